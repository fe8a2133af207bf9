"""Special-category lexicons: governance's data (`policies/lexicons/*.yaml`) as spaCy matchers.

One YAML file per category (health, drugs_alcohol, criminal, ...), in the format
`policies/lexicons/README.md` documents: `terms` (phrases, letter case ignored),
`exact` (phrases whose letter case matters: acronyms such as MASH), `patterns`
(spaCy Matcher token patterns), `regexes` (each with an optional named validator,
such as `nhs_number`'s mod-11 checksum) and `exclude` (phrases that cancel an
overlapping hit of the same category: "Church Street" is an address, not a faith).

Loading (`Lexicons.load`) only reads and checks the data; `Lexicons.compile` builds
the matchers against one pipeline's vocabulary, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
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

    def __post_init__(self) -> None:
        vocab = self.nlp.vocab
        self._phrases = PhraseMatcher(vocab, attr="LOWER")
        self._exact = PhraseMatcher(vocab, attr="ORTH")
        tokenize = self.nlp.make_doc
        for lexicon in self.lexicons:
            hit = self._key(lexicon.category, excluded=False)
            cancel = self._key(lexicon.category, excluded=True)
            if lexicon.terms:
                self._phrases.add(hit, [tokenize(p) for p in lexicon.phrases()])
            if lexicon.exact:
                self._exact.add(hit, [tokenize(p) for p in lexicon.exact_phrases()])
            if lexicon.exclude:
                self._phrases.add(cancel, [tokenize(p) for p in lexicon.exclusions()])
            for pattern in lexicon.patterns:
                try:
                    self._add_pattern(hit, pattern)
                except MatchPatternError as exc:
                    name = lexicon.path.name if lexicon.path else lexicon.category
                    raise LexiconError(f"{name}: pattern {pattern.name!r}: {exc}") from None

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
        for match_id, start, end in chain(
            self._phrases(doc), self._exact(doc), self._token_matches(doc)
        ):
            category, excluded = self._keys[match_id]
            span = (doc[start].idx, doc[end - 1].idx + len(doc[end - 1]))
            (cancelled if excluded else found).setdefault(category, []).append(span)
        text = doc.text
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
