"""Special-category lexicons: governance's data (`policies/lexicons/*.yaml`) as spaCy matchers.

One YAML file per category (health, drugs_alcohol, criminal, ...), in the format
`policies/lexicons/README.md` documents: `terms` (phrases, letter case ignored),
`exact` (phrases whose letter case matters: acronyms such as MASH), `patterns`
(spaCy Matcher token patterns), `regexes` (each with an optional named validator,
such as `nhs_number`'s mod-11 checksum) and `exclude` (phrases that cancel an
overlapping hit of the same category: "Church Street" is an address, not a faith).

Loading (`Lexicons.load`) only reads and checks the data; `Lexicons.compile` builds
the matchers against one pipeline's vocabulary, once.

`LexiconMatcher.find_text` finds the same hits as `find` on the whole text's tokens, but
tokenises only the stretches that can hold one: most of a letter holds no word any entry
needs, and spaCy's tokenizer is the dearest part of matching.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

import yaml
from spacy.attrs import LOWER, ORTH
from spacy.errors import MatchPatternError
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from gatekeeper.analysis.mentions import SPECIAL_CATEGORIES
from gatekeeper.assets import policies_dir

LEXICON_FOLDER = "lexicons"
_KEYS = frozenset(
    {"category", "description", "plurals", "terms", "exact", "patterns", "regexes", "exclude"}
)
_EXCLUDE = "exclude"


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and the entry."""


# -- validators -----------------------------------------------------------------------------


def is_valid_nhs_number(text: str) -> bool:
    """An NHS number: ten digits whose last is the mod-11 check digit of the first nine.

    Weights 10..2 over the first nine digits; check = 11 - (sum mod 11), 11 -> 0, and a
    check of 10 means no valid number. Ten equal digits pass the sum but are never issued.
    """
    digits = [int(ch) for ch in text if ch.isdigit()]
    if len(digits) != 10 or len(set(digits)) == 1:
        return False
    check = 11 - sum(d * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    if check == 11:
        check = 0
    return check != 10 and check == digits[9]


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "nhs_number": is_valid_nhs_number,
}


# -- the data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenPattern:
    name: str
    tokens: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class RegexRule:
    name: str
    regex: re.Pattern[str]
    validator: str | None = None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        check = VALIDATORS[self.validator] if self.validator else None
        for match in self.regex.finditer(text):
            if check is None or check(match.group()):
                yield match


@dataclass(frozen=True, slots=True)
class Lexicon:
    """One category's lexicon, as its file states it."""

    category: str
    description: str
    terms: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()
    patterns: tuple[TokenPattern, ...] = ()
    regexes: tuple[RegexRule, ...] = ()
    exclude: tuple[str, ...] = ()
    plurals: bool = True
    path: Path | None = None

    @property
    def size(self) -> int:
        """Entries as written (terms, exact phrases, patterns, regexes), before variants."""
        return len(self.terms) + len(self.exact) + len(self.patterns) + len(self.regexes)

    def phrases(self) -> list[str]:
        """Every phrase matched with letter case ignored, with its generated variants."""
        return _with_variants(self.terms, self.plurals)

    def exact_phrases(self) -> list[str]:
        return _with_variants(self.exact, self.plurals)

    def exclusions(self) -> list[str]:
        return _with_variants(self.exclude, plurals=False)

    @classmethod
    def from_mapping(cls, data: Any, path: Path) -> Lexicon:
        where = path.name
        if not isinstance(data, dict):
            raise LexiconError(f"{where}: expected a mapping with `category` and `terms`")
        unknown = set(data) - _KEYS
        if unknown:
            raise LexiconError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        category = data.get("category")
        if category not in SPECIAL_CATEGORIES:
            raise LexiconError(
                f"{where}: `category` {category!r} is not one of {', '.join(SPECIAL_CATEGORIES)}"
            )
        if path.stem != category:
            raise LexiconError(f"{where}: the file for category {category!r} is {category}.yaml")
        description = data.get("description")
        if not isinstance(description, str) or not description.strip():
            raise LexiconError(f"{where}: `description` is required")
        plurals = data.get("plurals", True)
        if not isinstance(plurals, bool):
            raise LexiconError(f"{where}: `plurals` is true or false")
        lexicon = cls(
            category=category,
            description=" ".join(description.split()),
            terms=_phrases(data, "terms", where),
            exact=_phrases(data, "exact", where),
            patterns=_patterns(data, where),
            regexes=_regexes(data, where),
            exclude=_phrases(data, "exclude", where),
            plurals=plurals,
            path=path,
        )
        if not lexicon.size:
            raise LexiconError(f"{where}: no terms, exact phrases, patterns or regexes")
        return lexicon


def _phrases(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise LexiconError(f"{where}: `{key}` must be a list of phrases")
    phrases: list[str] = []
    for position, item in enumerate(value, 1):
        if not isinstance(item, str) or not item.strip():
            raise LexiconError(f"{where}: `{key}` entry {position} is not a phrase: {item!r}")
        phrases.append(" ".join(item.split()))
    duplicates = sorted({p for p in phrases if phrases.count(p) > 1})
    if duplicates:
        raise LexiconError(f"{where}: `{key}` lists {', '.join(duplicates)} more than once")
    return tuple(phrases)


def _patterns(data: dict[str, Any], where: str) -> tuple[TokenPattern, ...]:
    value = data.get("patterns") or []
    if not isinstance(value, list):
        raise LexiconError(f"{where}: `patterns` must be a list of {{name, tokens}}")
    patterns = []
    for position, item in enumerate(value, 1):
        if (
            not isinstance(item, dict)
            or set(item) != {"name", "tokens"}
            or not isinstance(item["name"], str)
            or not isinstance(item["tokens"], list)
            or not item["tokens"]
            or not all(isinstance(token, dict) for token in item["tokens"])
        ):
            raise LexiconError(
                f"{where}: `patterns` entry {position} needs exactly `name` (text) and "
                "`tokens` (a list of spaCy token patterns)"
            )
        patterns.append(TokenPattern(item["name"], tuple(item["tokens"])))
    return tuple(patterns)


def _regexes(data: dict[str, Any], where: str) -> tuple[RegexRule, ...]:
    value = data.get("regexes") or []
    if not isinstance(value, list):
        raise LexiconError(f"{where}: `regexes` must be a list of {{name, regex, validator}}")
    rules = []
    for position, item in enumerate(value, 1):
        if (
            not isinstance(item, dict)
            or not {"name", "regex"} <= set(item) <= {"name", "regex", "validator"}
            or not isinstance(item["name"], str)
            or not isinstance(item["regex"], str)
        ):
            raise LexiconError(
                f"{where}: `regexes` entry {position} needs `name` and `regex` "
                "(and optionally `validator`)"
            )
        validator = item.get("validator")
        if validator is not None and validator not in VALIDATORS:
            raise LexiconError(
                f"{where}: regex {item['name']!r}: unknown validator {validator!r} "
                f"(known: {', '.join(sorted(VALIDATORS))})"
            )
        try:
            compiled = re.compile(item["regex"])
        except re.error as exc:
            raise LexiconError(f"{where}: regex {item['name']!r} does not compile: {exc}") from None
        rules.append(RegexRule(item["name"], compiled, validator))
    return tuple(rules)


_HYPHEN = re.compile(r"\s*-\s*")


def _plural(word: str) -> str | None:
    """The regular English plural of a phrase's last word, or None when it has none to make."""
    if not word.isalpha() or len(word) < 2:
        return None
    lower = word.lower()
    if lower.endswith("s"):
        return None
    if word.isupper():  # an acronym: "GPs", "EPOs"
        return word + "s"
    if lower.endswith(("x", "z", "ch", "sh")):
        return word + "es"
    if lower.endswith("y") and len(lower) > 2 and lower[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _with_variants(phrases: Iterable[str], plurals: bool) -> list[str]:
    """Phrases plus the forms a writer also uses: hyphen or space, straight or curly
    apostrophe, and (with `plurals`) the regular plural of the last word."""
    out: dict[str, None] = {}
    for phrase in phrases:
        forms = {phrase}
        if "-" in phrase:
            forms.add(_HYPHEN.sub(" ", phrase))
        if plurals:
            for form in list(forms):
                head, _, last = form.rpartition(" ")
                plural = _plural(last)
                if plural:
                    forms.add(f"{head} {plural}" if head else plural)
        for form in list(forms):
            if "'" in form:
                forms.add(form.replace("'", "\u2019"))
        for form in sorted(forms):
            out.setdefault(form, None)
    return list(out)


# -- the collection and its matchers --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LexiconHit:
    """A stretch of text (character offsets) that a category's lexicon matched."""

    category: str
    start: int
    end: int


@dataclass(frozen=True)
class Lexicons:
    """Every category's lexicon."""

    lexicons: tuple[Lexicon, ...]

    @classmethod
    def load(cls, folder: Path | None = None) -> Lexicons:
        """Read and check every `<category>.yaml` in `folder` (default: the shipped lexicons)."""
        where = folder or policies_dir() / LEXICON_FOLDER
        files = sorted(where.glob("*.yaml"))
        if not files:
            raise LexiconError(f"no lexicon files (*.yaml) in {where}")
        lexicons = []
        for path in files:
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise LexiconError(f"{path.name}: cannot be read: {exc}") from None
            lexicons.append(Lexicon.from_mapping(data, path))
        return cls(tuple(lexicons))

    def __iter__(self) -> Iterator[Lexicon]:
        return iter(self.lexicons)

    def __getitem__(self, category: str) -> Lexicon:
        for lexicon in self.lexicons:
            if lexicon.category == category:
                return lexicon
        raise KeyError(category)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(lexicon.category for lexicon in self.lexicons)

    def compile(self, nlp: Language) -> LexiconMatcher:
        return LexiconMatcher(self, nlp)


@dataclass(repr=False)
class LexiconMatcher:
    """Every lexicon compiled into spaCy matchers plus the regexes; `find` returns each
    category's hits, overlaps inside a category merged (the longest wins).

    Phrases go into two PhraseMatchers (letter case ignored, and exact). spaCy's Matcher
    tries every pattern at every token (about 0.4 ms per pattern on a 3 kB email), so each
    token pattern goes into a small Matcher filed under one word it requires (its anchor:
    "sex" in "had sex"), and runs only around the tokens that are that word.
    """

    lexicons: Lexicons
    nlp: Language
    _phrases: PhraseMatcher = field(init=False)
    _exact: PhraseMatcher = field(init=False)
    _anchored: dict[tuple[int, int], Matcher] = field(init=False, default_factory=dict)
    _anywhere: Matcher | None = field(init=False, default=None)
    _reach: int = field(init=False, default=1)
    _keys: dict[int, tuple[str, bool]] = field(init=False, default_factory=dict)
    _cues: _Cues = field(init=False)

    def __post_init__(self) -> None:
        vocab = self.nlp.vocab
        self._phrases = PhraseMatcher(vocab, attr="LOWER")
        self._exact = PhraseMatcher(vocab, attr="ORTH")
        tokenize = self.nlp.make_doc
        self._cues = cues = _Cues(self.nlp)
        for lexicon in self.lexicons:
            hit = self._key(lexicon.category, excluded=False)
            cancel = self._key(lexicon.category, excluded=True)
            if lexicon.terms:
                self._phrases.add(hit, cues.phrases([tokenize(p) for p in lexicon.phrases()]))
            if lexicon.exact:
                self._exact.add(hit, cues.phrases([tokenize(p) for p in lexicon.exact_phrases()]))
            if lexicon.exclude:
                self._phrases.add(cancel, cues.phrases([tokenize(p) for p in lexicon.exclusions()]))
            for pattern in lexicon.patterns:
                try:
                    self._add_pattern(hit, pattern)
                except MatchPatternError as exc:
                    name = lexicon.path.name if lexicon.path else lexicon.category
                    raise LexiconError(f"{name}: pattern {pattern.name!r}: {exc}") from None
        # Every token pattern is run around its anchor, `_reach` tokens either side (see
        # `_token_matches`), so a stretch tokenised for one needs that much around it.
        for lexicon in self.lexicons:
            for pattern in lexicon.patterns:
                cues.pattern(pattern.tokens, self._reach)

    def _key(self, category: str, excluded: bool) -> str:
        key = f"{category}\0{_EXCLUDE}" if excluded else category
        self._keys[self.nlp.vocab.strings.add(key)] = (category, excluded)
        return key

    def _add_pattern(self, key: str, pattern: TokenPattern) -> None:
        # Checked whole first, so that an error names the pattern as it is written.
        Matcher(self.nlp.vocab, validate=True).add(key, [list(pattern.tokens)])
        self._reach = max(self._reach, _reach(pattern.tokens))
        anchor = _anchor(pattern.tokens)
        if anchor is None:
            if self._anywhere is None:
                self._anywhere = Matcher(self.nlp.vocab)
            self._anywhere.add(key, [list(pattern.tokens)])
            return
        position, attr, values = anchor
        for value in values:
            tokens = list(pattern.tokens)
            tokens[position] = {"LOWER" if attr == LOWER else "ORTH": value}
            slot = (attr, self.nlp.vocab.strings.add(value))
            matcher = self._anchored.get(slot)
            if matcher is None:
                matcher = self._anchored[slot] = Matcher(self.nlp.vocab)
            matcher.add(key, [tokens])

    def _token_matches(self, doc: Doc) -> set[tuple[int, int, int]]:
        matches: set[tuple[int, int, int]] = set(self._anywhere(doc)) if self._anywhere else set()
        if not self._anchored or not len(doc):
            return matches
        anchored, reach = self._anchored, self._reach
        for i, (lower, orth) in enumerate(doc.to_array([LOWER, ORTH]).tolist()):
            for slot in ((LOWER, lower), (ORTH, orth)):
                matcher = anchored.get(slot)
                if matcher is not None:
                    first = max(0, i - reach)
                    for key, start, end in matcher(doc[first : i + reach]):
                        if start <= i - first < end:
                            matches.add((key, first + start, first + end))
        return matches

    def find(self, doc: Doc) -> list[LexiconHit]:
        """The special-category hits in `doc`, as character offsets into `doc.text`."""
        found: dict[str, list[tuple[int, int]]] = {}
        cancelled: dict[str, list[tuple[int, int]]] = {}
        self._match(doc, 0, found, cancelled)
        return self._hits(doc.text, found, cancelled)

    def find_text(self, text: str, words: Iterable[str] | None = None) -> list[LexiconHit]:
        """The hits `find` gives for `nlp.make_doc(text)`, as character offsets into `text`.

        spaCy splits a text at whitespace and tokenises each piece on its own, so a stretch
        of whole pieces tokenises as it does inside the whole text. Every lexicon entry
        needs one of its words (its cue: "cannabis" for "cannabis use"), so only the
        stretches around a cue, wide enough for the longest hit the entry can make, are
        tokenised and matched; a text with no cue costs one scan. `words`, the text's
        distinct runs of letters and digits if the caller has them, spare that scan.
        """
        if not text:
            return []
        spans = self._cues.stretches(text, words)
        if spans is None:  # text the cues cannot be looked for in: tokenise all of it
            return self.find(self.nlp.make_doc(text))
        found: dict[str, list[tuple[int, int]]] = {}
        cancelled: dict[str, list[tuple[int, int]]] = {}
        for start, end in spans:
            self._match(self.nlp.make_doc(text[start:end]), start, found, cancelled)
        return self._hits(text, found, cancelled)

    def _match(
        self,
        doc: Doc,
        offset: int,
        found: dict[str, list[tuple[int, int]]],
        cancelled: dict[str, list[tuple[int, int]]],
    ) -> None:
        """Add the phrase and pattern hits in `doc` (which starts at `offset` of the text)."""
        for match_id, start, end in chain(
            self._phrases(doc), self._exact(doc), self._token_matches(doc)
        ):
            category, excluded = self._keys[match_id]
            last = doc[end - 1]
            span = (offset + doc[start].idx, offset + last.idx + len(last))
            (cancelled if excluded else found).setdefault(category, []).append(span)

    def _hits(
        self,
        text: str,
        found: dict[str, list[tuple[int, int]]],
        cancelled: dict[str, list[tuple[int, int]]],
    ) -> list[LexiconHit]:
        """The regexes' hits added, cancelled hits dropped, overlaps merged, in text order."""
        for lexicon in self.lexicons:
            for rule in lexicon.regexes:
                for match in rule.finditer(text):
                    found.setdefault(lexicon.category, []).append(match.span())
        hits: list[LexiconHit] = []
        for category, spans in found.items():
            blocked = cancelled.get(category, ())
            kept = [s for s in spans if not any(_overlap(s, b) for b in blocked)]
            hits.extend(LexiconHit(category, start, end) for start, end in _longest_first(kept))
        return sorted(hits, key=lambda h: (h.start, h.end, h.category))


# -- finding where a text can hold a hit ----------------------------------------------------

# Token attributes that depend on the token's own text only, so that a token reads the same
# in a stretch as in the whole text. A pattern using any other (`SPACY`, `IS_SENT_START`,
# `_`) makes `find_text` tokenise all of a text.
_TEXT_ATTRS = frozenset(
    """ORTH TEXT LOWER NORM SHAPE PREFIX SUFFIX LENGTH IS_ALPHA IS_ASCII IS_DIGIT IS_LOWER
    IS_UPPER IS_TITLE IS_PUNCT IS_SPACE IS_STOP IS_BRACKET IS_QUOTE IS_LEFT_PUNCT
    IS_RIGHT_PUNCT IS_CURRENCY LIKE_NUM LIKE_URL LIKE_EMAIL OP""".split()
)
# Runs of ASCII letters or digits in lower-cased text: where a cue can stand.
_ASCII_RUN = re.compile(r"[a-z]+|[0-9]+")
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_ASCII_DIGITS = frozenset("0123456789")
# Stretches closer than this many characters are tokenised as one.
_JOIN_GAP = 40


@dataclass(frozen=True, slots=True)
class _Need:
    """One token a match needs: one of `runs` as a run of the lower-cased text, or one of
    `pieces` in it; with `cased`, one of those in the text as it is (an exact phrase)."""

    runs: frozenset[str]
    pieces: tuple[str, ...]
    cased: tuple[str, ...] = ()

    def met(self, runs: set[str], lower: str, text: str) -> bool:
        if self.cased and not any(c in text for c in self.cased):
            return False
        return not self.runs.isdisjoint(runs) or any(p in lower for p in self.pieces)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A lexicon entry, as its cue finds it: how many tokens it reaches either side of the
    cue, and the tokens it needs (`runs`: each of these; `needs`: the rest)."""

    before: int
    after: int
    runs: frozenset[str]
    needs: tuple[_Need, ...]

    @classmethod
    def of(cls, before: int, after: int, needs: Iterable[_Need]) -> _Entry:
        single = [n for n in needs if len(n.runs) == 1 and not n.pieces and not n.cased]
        rest = tuple(n for n in needs if n not in single)
        return cls(before, after, frozenset(w for n in single for w in n.runs), rest)

    def possible(self, runs: set[str], lower: str, text: str) -> bool:
        return self.runs <= runs and all(need.met(runs, lower, text) for need in self.needs)


class _Cues:
    """The words lexicon entries need, and how far a hit can reach from each (in tokens).

    A cue is one token an entry cannot match without, lower-cased. Most are a whole run of
    ASCII letters or digits ("cannabis", "47"): such a token stands in the text as a run
    of its own, because spaCy cuts between two letters (or two digits) only in its special
    cases ("cannot" is "can" + "not"); those are found with one set intersection, and a
    word that a special case can cut out is also looked for as that special case. Any other
    cue ("a&e", "s.47") is looked for as a substring. An entry whose other words are not all
    in the text (as runs) cannot match and is passed over.

    Stretches are measured in whitespace-separated pieces, each one token or more, so n
    pieces either side of a cue hold at least n tokens either side.
    """

    def __init__(self, nlp: Language) -> None:
        self.runs: dict[str, list[_Entry]] = {}
        self.strings: dict[str, list[_Entry]] = {}
        self.whole = False  # some entry has no cue: every text is tokenised whole
        # Words a special case cuts out of a run of letters or digits, and those cases.
        self.cut: dict[str, set[str]] = {}
        rules: dict[str, Any] = getattr(nlp.tokenizer, "rules", None) or {}
        for special in rules:
            words = [t.text.lower() for t in nlp.tokenizer(special)]
            for left, right in pairwise(words):
                if left and right and _kind(left[-1]) and _kind(left[-1]) == _kind(right[0]):
                    for word in (left, right):
                        self.cut.setdefault(word, set()).add(special.lower())
        self._patterns: dict[int, re.Pattern[str]] = {}

    def phrases(self, docs: list[Doc], *, exact: bool = False) -> list[Doc]:
        """Note the cue of each phrase (matched token for token, in letter case too when
        `exact`); returns `docs`."""
        for doc in docs:
            words = [t.lower_ for t in doc]
            ranked = [(rank, -i) for i, w in enumerate(words) if (rank := self._rank([w]))]
            if not ranked:
                self.whole = True
                continue
            position = -max(ranked)[1]  # the best cue, the first of equals
            cased = [t.text for t in doc] if exact else None
            needs = tuple(
                self._need([word], [cased[i]] if cased else None)
                for i, word in enumerate(words)
                if not word.isspace()
            )
            self._add([words[position]], _Entry.of(position, len(words) - 1 - position, needs))
        return docs

    def pattern(self, tokens: tuple[dict[str, Any], ...], reach: int) -> None:
        """Note the cue of a token pattern, with room either side for the longest match it
        can make. One whose length has no bound is cued by its anchor, with the whole window
        it is run over (`reach` tokens either side)."""
        if not all(str(name).upper() in _TEXT_ATTRS for token in tokens for name in token):
            self.whole = True
            return
        plains = [plain for plain in (_plain(token) for token in tokens) if plain is not None]
        required = [[value.lower() for value in values] for _, values in plains]
        needs = tuple(
            self._need(words, values if attr == ORTH else None)
            for words, (attr, values) in zip(required, plains, strict=True)
        )
        options: list[tuple[list[str], int]] = []
        if _unbounded(tokens):
            anchor = _anchor(tokens)
            if anchor is not None:
                options.append(([value.lower() for value in anchor[2]], reach))
        else:
            options.extend((words, _reach(tokens) - 1) for words in required)
        ranked = []
        for words, margin in options:
            rank = self._rank(words)
            if rank is not None:
                ranked.append((rank, words, margin))
        if not ranked:
            self.whole = True
            return
        _, words, margin = max(ranked, key=lambda r: r[0])
        self._add(words, _Entry.of(margin, margin, needs))

    def _need(self, words: list[str], cased: list[str] | None) -> _Need:
        """A token that is one of `words` (lower-cased; one of `cased` as written)."""
        runs = frozenset(w for w in words if _ASCII_RUN.fullmatch(w) and w not in self.cut)
        pieces = tuple(dict.fromkeys(w for w in words if w not in runs))
        return _Need(runs, pieces, tuple(dict.fromkeys(cased)) if cased else ())

    def _rank(self, words: list[str]) -> tuple[int, int, int] | None:
        """How good a cue any of `words` makes, the worst of them counting (a rare word is
        better); None when one cannot be looked for."""
        ranks = []
        for word in words:
            if not word or word.isspace() or "\u03c3" in word or "\u03c2" in word:
                return None  # sigma lower-cases by context: no fixed substring to look for
            kind = 2 if word not in self.cut else 1
            run = _ASCII_RUN.fullmatch(word) is not None
            ranks.append((kind if run else 0, int(word not in STOP_WORDS), len(word)))
        return min(ranks) if ranks else None

    def _add(self, words: list[str], entry: _Entry) -> None:
        for word in words:
            if _ASCII_RUN.fullmatch(word):
                self.runs.setdefault(word, []).append(entry)
                for special in self.cut.get(word, ()):
                    self.strings.setdefault(special, []).append(entry)
            else:
                self.strings.setdefault(word, []).append(entry)

    def stretches(
        self, text: str, words: Iterable[str] | None = None
    ) -> list[tuple[int, int]] | None:
        """The stretches of `text` (sorted, disjoint, of whole pieces) that hold every hit an
        entry can make; None when cues cannot be looked for in this text. `words`: the
        text's distinct runs of letters and digits (`[^\\W_]+`), if known."""
        lower = text.lower()
        if self.whole or len(lower) != len(text):
            return None  # (a few characters lower-case to two: "İ")
        # Every ASCII run stands inside a word, so the distinct words hold them all.
        within = lower if words is None else " ".join(words).lower()
        runs = set(_ASCII_RUN.findall(within))
        backwards = text[::-1]
        found: list[tuple[int, int]] = []
        for word in self.runs.keys() & runs:
            entries = [e for e in self.runs[word] if e.possible(runs, lower, text)]
            if not entries:
                continue
            letters = _ASCII_LETTERS if word[0] in _ASCII_LETTERS else _ASCII_DIGITS
            at = lower.find(word)
            while at >= 0:
                end = at + len(word)
                if (at == 0 or lower[at - 1] not in letters) and (
                    end == len(lower) or lower[end] not in letters
                ):
                    found.extend(self._around(text, backwards, lower, at, entries))
                at = lower.find(word, end)
        for word, candidates in self.strings.items():
            at = lower.find(word)
            if at < 0:
                continue
            entries = [e for e in candidates if e.possible(runs, lower, text)]
            while entries and at >= 0:
                found.extend(self._around(text, backwards, lower, at, entries))
                at = lower.find(word, at + 1)
        spans: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if spans and start <= spans[-1][1] + _JOIN_GAP:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        return spans

    def _around(
        self, text: str, backwards: str, lower: str, at: int, entries: list[_Entry]
    ) -> Iterator[tuple[int, int]]:
        """The stretch around the cue at `at` that the entries which can match there reach,
        if any can: all an entry needs must stand within its reach of the cue."""
        last = len(text)
        before = max(e.before for e in entries)
        after = max(e.after for e in entries)
        start = last - self._pieces(before, backwards, last - 1 - at)
        end = self._pieces(after, text, at)
        part = lower[start:end]
        runs = set(_ASCII_RUN.findall(part))
        entries = [e for e in entries if e.possible(runs, part, text[start:end])]
        if entries:
            yield start, end

    def _pieces(self, count: int, text: str, at: int) -> int:
        """Where the piece of `text` holding `at` ends, taking up to `count` pieces more."""
        pattern = self._patterns.get(count)
        if pattern is None:
            pattern = self._patterns[count] = re.compile(rf"\S*(?:\s+\S+){{0,{count}}}")
        found = pattern.match(text, at)
        return found.end() if found else at


def _kind(char: str) -> str | None:
    """`a` for an ASCII letter, `d` for an ASCII digit, None for anything else."""
    lower = char.lower()
    if lower in _ASCII_LETTERS:
        return "a"
    if lower in _ASCII_DIGITS:
        return "d"
    return None


# A pattern token with unbounded repetition ("*", "+", "{2,}") is taken to cover at most
# this many tokens when the window a pattern is run over is worked out.
_UNBOUNDED = 10
_REPEAT = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _reach(tokens: Iterable[dict[str, Any]]) -> int:
    """How many tokens the pattern can cover at most."""
    total = 0
    for token in tokens:
        op = token.get("OP")
        if op is None or op == "?":
            total += 1
        elif op in ("*", "+"):
            total += _UNBOUNDED
        elif isinstance(op, str) and (repeat := _REPEAT.fullmatch(op)):
            least, comma, most = repeat.groups()
            total += int(most) if most else (_UNBOUNDED if comma else int(least or 1))
    return max(total, 1)


def _unbounded(tokens: Iterable[dict[str, Any]]) -> bool:
    """Whether the pattern can match any number of tokens (`*`, `+`, `{2,}`)."""
    for token in tokens:
        op = token.get("OP")
        if op in ("*", "+"):
            return True
        if isinstance(op, str) and (repeat := _REPEAT.fullmatch(op)):
            _, comma, most = repeat.groups()
            if comma and not most:
                return True
    return False


def _plain(token: dict[str, Any]) -> tuple[int, list[str]] | None:
    """The attribute and values a pattern token requires when it is that plain (`{LOWER: x}`,
    `{TEXT: {IN: [x, y]}}`, no OP); None for anything else."""
    if len(token) != 1:
        return None
    ((name, value),) = token.items()
    attr = {"LOWER": LOWER, "ORTH": ORTH, "TEXT": ORTH}.get(str(name).upper())
    if attr is None:
        return None
    if isinstance(value, str):
        values = [value]
    elif (
        isinstance(value, dict)
        and set(value) == {"IN"}
        and isinstance(value["IN"], list)
        and all(isinstance(v, str) for v in value["IN"])
    ):
        values = value["IN"]
    else:
        return None
    return attr, list(dict.fromkeys(v.lower() if attr == LOWER else v for v in values))


def _anchor(tokens: tuple[dict[str, Any], ...]) -> tuple[int, int, list[str]] | None:
    """Which token of a pattern to look for first: a required, plain one, preferring one
    that is no stop word ("the", "had") and then the one with the fewest values."""
    candidates = []
    for position, token in enumerate(tokens):
        plain = _plain(token)
        if plain is not None:
            attr, values = plain
            common = any(v.lower() in STOP_WORDS for v in values)
            candidates.append((common, len(values), position, attr, values))
    if not candidates:
        return None
    _, _, position, attr, values = min(candidates, key=lambda c: c[:3])
    return position, attr, values


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _longest_first(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Non-overlapping spans, a longer one winning over any it overlaps (then the earlier)."""
    chosen: list[tuple[int, int]] = []
    taken: set[int] = set()
    for start, end in sorted(set(spans), key=lambda s: (s[0] - s[1], s[0])):
        if taken.isdisjoint(range(start, end)):
            chosen.append((start, end))
            taken.update(range(start, end))
    return sorted(chosen)
