"""The `Analyzer`: one item's text in, every mention of a case, a person, a contact point or
special-category content out, each with its source and character span.

What finds what:
- case references: every word run ("100123", "COM1234567", "ABC/12345") looked up in the
  case index; a purely numeric one needs five digits and must not be part of a longer
  digit run (a phone number, an amount).
- party names: the matcher built from the case index is a dict lookup, not a spaCy
  PhraseMatcher: a million parties would make millions of patterns (gigabytes, minutes to
  build), while windows of 2..N words starting at a capitalised word, each one dict
  lookup, find the same names in microseconds with no copy of the index.
- other person names: spaCy's statistical NER (PERSON), minus party and staff names.
- postcodes and email addresses: regular expressions.
- special-category content: the lexicons (`gatekeeper.analysis.lexicon`).

Analysis only annotates; the checks decide what the mentions mean.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language

from gatekeeper.analysis.language import PipelineSettings, load_language, pipeline_settings
from gatekeeper.analysis.lexicon import LexiconMatcher, Lexicons
from gatekeeper.analysis.mentions import (
    BODY,
    QUOTED,
    SUBJECT,
    Annotations,
    Mention,
    MentionKind,
    Source,
    SourceKind,
)
from gatekeeper.analysis.mime import largely_unreadable
from gatekeeper.casebook import CaseIndex, name_key
from gatekeeper.contact import POSTCODE_IN_TEXT, InvalidContact, normalise_postcode
from gatekeeper.item import Item

# -- patterns -------------------------------------------------------------------------------

# A run of letters and digits joined by "/" or "-": "100123", "LS12P12345", "ABC/12345".
# Scanned from the start, a run always starts after a non-word: no look-behind needed, and
# without one the regex engine skips straight to the next word.
_REFERENCE_RUN = re.compile(r"[^\W_]+(?:[/-][^\W_]+)*")
_REFERENCE_PART = re.compile(r"[^\W_]+")
_JOINER = re.compile(r"[/-]")
_MIN_NUMERIC_REFERENCE = 5
_ASCII_DIGITS = "0123456789"
# Digit groups joined by one of these belong to one number: "0113 496 0000", "1.000.000".
_DIGIT_JOINERS = " -.\u00a0"
_CURRENCY = "£$€"

_EMAIL = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])"
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W_](?:[\w-]*[^\W_])?"
)

# A word of a name, and what may stand between two words of one name: spaces, one line
# break (hard-wrapped or quoted mail: "Tom\n> Smith"), or a hyphen or apostrophe with no
# space ("Smith-Jones", "O'Brien", the possessive "Smith's").
_WORD = re.compile(r"[^\W_]+")
_WORD_SPLIT = re.compile(r"([^\W_]+)")
_NAME_GAP = re.compile(r"[ \t\u00a0]+|[ \t\u00a0]*\r?\n[ \t\u00a0>]*|[-\u2010\u2011'\u2019]")
_SPACE_GAP = frozenset(" \t\u00a0\r\n>")
# A line of this many characters before a line break is taken to be hard-wrapped text
# (mail programs wrap at 72 to 78; format=flowed and quoting add a little).
_WRAPPED_LINE = (50, 100)

# Capitalised words that do not make a sentence worth the NER's time.
_NOT_NAMES = frozenset(
    """i i'm i've i'll i'd january february march april may june july august september
    october november december monday tuesday wednesday thursday friday saturday sunday""".split()
)
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "lady", "lord"})
# A full stop after one of these ends no sentence.
_ABBREVIATIONS = _TITLES | {"st", "no", "ref", "tel", "eg", "ie", "etc", "approx", "vs", "co"}
_PARAGRAPH = re.compile(r"\n[ \t>]*\r?\n")
# A sentence's closing marks and the space after them; the closing quotes and brackets
# before the marks are walked back over (see `_sentence_ends`).
_TERMINATOR = re.compile(r"[.!?\u2026]+[\"')\]]*\s")
_CLOSERS = "\"')]"
# Words either side of a candidate the NER reads: its features see four tokens each way.
_CONTEXT_WORDS = 6
# A window grown longer than this (a page of capitalised words) is closed and another begun.
_MAX_WINDOW_WORDS = 300
_CACHED_PASSAGE_CHARS = 2000
_POSSESSIVE = re.compile(r"(?:['\u2019]s?)$")


# -- the analyzer ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    start: int  # first word
    end: int  # one past the last word
    key: str
    staff: bool


class _NerCache:
    """PERSON spans per passage text, least recently used dropped first (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[tuple[int, int], ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> tuple[tuple[int, int], ...] | None:
        if not self.size:
            return None
        with self._lock:
            found = self._entries.get(text)
            if found is not None:
                self._entries.move_to_end(text)
            return found

    def put(self, text: str, spans: tuple[tuple[int, int], ...]) -> None:
        if not self.size or len(text) > _CACHED_PASSAGE_CHARS:
            return
        with self._lock:
            self._entries[text] = spans
            self._entries.move_to_end(text)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Analyzer:
    """Annotates items against one case index; build once, call `annotate` per item."""

    def __init__(
        self,
        index: CaseIndex,
        *,
        staff_names: Iterable[str] = (),
        nlp: Language | None = None,
        lexicons: Lexicons | None = None,
        settings: PipelineSettings | None = None,
    ) -> None:
        self.index = index
        self.settings = settings or pipeline_settings()
        self.nlp = nlp or load_language()
        self.lexicons = lexicons or Lexicons.load()
        self.matcher: LexiconMatcher = self.lexicons.compile(self.nlp)
        self.staff_keys = frozenset(k for k in (name_key(n) for n in staff_names) if " " in k)
        self._longest_staff = max((k.count(" ") + 1 for k in self.staff_keys), default=0)
        self._first_words: frozenset[str] = frozenset()
        self._first_words_of = -1  # the number of parties they were read from
        self._person_labels = frozenset(self.settings.person_labels)
        self._run_ner = any(name == "ner" for name in self.nlp.pipe_names)
        self.ner_cache = _NerCache(self.settings.ner_cache_size)
        self._reading = threading.Lock()

    # -- the one entry point --------------------------------------------------------------

    def annotate(self, item: Item) -> Annotations:
        # spaCy keeps every new word it meets (names, references, garbage) in its vocabulary
        # for good, so a long-lived gate grew with each one: a memory zone drops them after
        # the item. The zone is process-wide, so one item is read at a time.
        with self._reading, self.nlp.memory_zone():
            return self._annotate(item)

    def _annotate(self, item: Item) -> Annotations:
        texts = self.texts(item)
        annotations = Annotations(texts=texts)
        mentions = annotations.mentions
        blocked: dict[Source, _Spans] = {}  # a PERSON entity overlapping these is no mention
        windows: dict[Source, list[tuple[int, int]]] = {}  # what the NER reads, per source
        for source, text in texts.items():
            if not text:
                continue
            words = _Words(text)
            emails = list(self._emails(text, source))
            email_spans = _Spans((m.start, m.end) for m in emails)
            names, name_spans = self._names(text, source, words, email_spans)
            references = list(self._references(text, source, email_spans, words))
            postcodes = list(self._postcodes(text, source, email_spans))
            mentions.extend(emails + names + references + postcodes)
            postcode_spans = _Spans((m.start, m.end) for m in postcodes)
            pieces = _chunks(text, self.settings.chunk_chars)
            # A text in one piece hands over its words: the lexicons' cues are found in them
            # rather than in another pass over the text.
            known_words = words.distinct() if len(pieces) == 1 else None
            for offset, piece in pieces:
                mentions.extend(self._specials(piece, source, offset, postcode_spans, known_words))
            blocked[source] = _Spans([*email_spans, *name_spans])
            known = _Spans(
                [*blocked[source], *postcode_spans, *((m.start, m.end) for m in references)]
            )
            # Text that is largely not text (held as unreadable anyway) names nobody the NER
            # could find, and costs it seconds for every 20 kB: it is not read for names.
            unreadable = largely_unreadable(text)
            windows[source] = [] if unreadable else self._ner_windows(text, words, known)
        for source, spans in self._persons(texts, windows).items():
            mentions.extend(self._person_names(texts[source], source, spans, blocked[source]))
        order = {source: position for position, source in enumerate(texts)}
        mentions.sort(key=lambda m: (order[m.source], m.start, m.end, m.kind.value))
        return annotations

    @staticmethod
    def texts(item: Item) -> dict[Source, str]:
        """The item's text per source: subject, body, quoted text, each attachment with text."""
        texts: dict[Source, str] = {
            SUBJECT: item.subject,
            BODY: "\n".join(s.text for s in item.body if not s.quoted),
            QUOTED: "\n".join(s.text for s in item.body if s.quoted),
        }
        seen: dict[str, int] = {}
        for attachment in item.all_attachments():
            if not attachment.text.strip():
                continue
            count = seen[attachment.name] = seen.get(attachment.name, 0) + 1
            name = attachment.name if count == 1 else f"{attachment.name} ({count})"
            while Source(SourceKind.ATTACHMENT, name) in texts:  # "a.pdf (2)" was a real name
                count += 1
                name = f"{attachment.name} ({count})"
            texts[Source(SourceKind.ATTACHMENT, name)] = attachment.text
        return texts

    # -- case references ------------------------------------------------------------------

    def _references(
        self, text: str, source: Source, taken: _Spans, words: _Words
    ) -> Iterator[Mention]:
        lookup = self.index.case_for_reference
        # Most runs are ordinary words: look each distinct one (and the parts of a joined
        # one) up once, and walk the text only for those that name a case.
        runs = words.reference_runs()
        # (The keys' own `isdisjoint` walks the smaller side: a few hundred words, not
        # every reference in the record.)
        if self.index.reference_keys().isdisjoint(set(map(str.casefold, runs))):
            return  # no run, nor any word of a joined one, is a reference (the usual case)
        naming = set()
        for whole in runs:
            if lookup(whole) is not None or (
                ("/" in whole or "-" in whole)
                and any(lookup(part) is not None for part in _REFERENCE_PART.findall(whole))
            ):
                naming.add(whole)
        if not naming:
            return
        for run in _REFERENCE_RUN.finditer(text):
            if run.group() not in naming:
                continue
            if taken and taken.overlaps(run.start(), run.end()):
                continue
            whole = run.group()
            joined = "/" in whole or "-" in whole
            case = (
                lookup(whole)
                if not whole.isdigit() or self._numeric_ok(text, *run.span())
                else None
            )
            if case is not None:
                yield Mention(MentionKind.CASE_REFERENCE, case.case_id, whole, source, *run.span())
                continue
            if not joined:
                continue
            for part in _REFERENCE_PART.finditer(whole):
                start, end = run.start() + part.start(), run.start() + part.end()
                word = part.group()
                if word.isdigit() and not self._numeric_ok(text, start, end):
                    continue
                case = lookup(word)
                if case is not None:
                    yield Mention(
                        MentionKind.CASE_REFERENCE, case.case_id, word, source, start, end
                    )

    @staticmethod
    def _numeric_ok(text: str, start: int, end: int) -> bool:
        """A number is a reference only with five digits or more, standing on its own."""
        if end - start < _MIN_NUMERIC_REFERENCE:
            return False
        before = text[max(0, start - 2) : start]
        after = text[end : end + 2]
        if any(ch in _CURRENCY for ch in before.replace(" ", "")[-1:]):
            return False  # an amount: "£100123", "£ 100123"
        joined_before = before[-1:].isdigit() or (
            len(before) == 2 and before[1] in _DIGIT_JOINERS and before[0].isdigit()
        )
        joined_after = after[:1].isdigit() or (
            len(after) == 2 and after[0] in _DIGIT_JOINERS and after[1].isdigit()
        )
        return not (joined_before or joined_after)

    # -- party and staff names ------------------------------------------------------------

    def _names(
        self, text: str, source: Source, words: _Words, taken: _Spans
    ) -> tuple[list[Mention], list[tuple[int, int]]]:
        """Party-name mentions, and the spans of every name found (party or staff)."""
        longest = max(self.index.longest_name_words, self._longest_staff)
        count = len(words)
        if longest < 2 or count < 2:
            return [], []
        has_name, staff = self.index.has_name, self.staff_keys
        first_words = self.first_words()
        windows: list[_Window] = []
        for i in words.capitals:  # a name starts with a capital letter
            if words.key(i).partition(" ")[0] not in first_words:
                continue  # no party or staff name starts with this word
            if taken and words.overlaps(i, taken):
                continue
            last = i
            while (
                last + 1 < count
                and last - i + 1 < longest
                and words.joins(last)
                and not (taken and words.overlaps(last + 1, taken))
            ):
                last += 1
            if last == i:
                continue
            keys = [words.key(k) for k in range(i, last + 1)]
            spaced = [words.spaced(k) for k in range(i, last)]
            for end in range(last + 1, i + 1, -1):
                if not any(spaced[: end - 1 - i]):
                    continue  # one token ("Smith-Jones", "O'Brien") is not a name to match
                key = " ".join(keys[: end - i])
                if key in staff or has_name(key):
                    windows.append(_Window(i, end, key, key in staff))
                    break
        chosen: list[_Window] = []
        used: set[int] = set()
        for window in sorted(windows, key=lambda w: (w.start - w.end, w.start)):
            if used.isdisjoint(range(window.start, window.end)):
                chosen.append(window)
                used.update(range(window.start, window.end))
        mentions = []
        spans = []
        for window in sorted(chosen, key=lambda w: w.start):
            start, end = words.starts[window.start], words.ends[window.end - 1]
            spans.append((start, end))
            if window.staff:
                continue
            party_ids = tuple(p.party_id for p in self.index.parties_named(window.key))
            mentions.append(
                Mention(
                    MentionKind.PARTY_NAME, window.key, text[start:end], source, start, end,
                    party_ids,
                )
            )  # fmt: skip
        return mentions, spans

    def first_words(self) -> frozenset[str]:
        """The first word (key form) of every party and staff name: a window that starts
        with any other word names nobody, and is not looked up."""
        if self._first_words_of != len(self.index.parties):
            words = {key.partition(" ")[0] for key in self.staff_keys}
            for party in self.index.parties.values():
                for name in party.names:
                    if name.isascii():
                        first = _WORD.search(name.casefold())
                        words.add(first.group() if first else "")
                    else:
                        words.add(name_key(name).partition(" ")[0])
            self._first_words = frozenset(words)
            self._first_words_of = len(self.index.parties)
        return self._first_words

    # -- other person names (NER) ---------------------------------------------------------

    def _persons(
        self, texts: dict[Source, str], windows: dict[Source, list[tuple[int, int]]]
    ) -> dict[Source, list[tuple[int, int]]]:
        """PERSON spans from the NER over each source's windows, as offsets into its text."""
        results: dict[Source, list[tuple[int, int]]] = {source: [] for source in windows}
        if not self._run_ner:
            return results
        pending: dict[str, list[tuple[Source, int]]] = {}  # window text -> where it stands
        for source, spans in windows.items():
            for start, end in spans:
                passage = texts[source][start:end]
                cached = self.ner_cache.get(passage)
                if cached is not None:
                    results[source].extend((start + a, start + b) for a, b in cached)
                else:
                    pending.setdefault(passage, []).append((source, start))
        if not pending:
            return results
        labels = self._person_labels
        docs = self.nlp.pipe(
            (self.nlp.make_doc(passage) for passage in pending),
            batch_size=self.settings.batch_size,
        )
        for (passage, places), doc in zip(pending.items(), docs, strict=True):
            found = tuple((e.start_char, e.end_char) for e in doc.ents if e.label_ in labels)
            self.ner_cache.put(passage, found)
            for source, start in places:
                results[source].extend((start + a, start + b) for a, b in found)
        return results

    def _ner_windows(self, text: str, words: _Words, known: _Spans) -> list[tuple[int, int]]:
        """The stretches of `text` the NER reads: all of it (`ner_scope: all`), or a few words
        either side of each capitalised word that could be part of a name not yet explained
        (`candidates`), within its paragraph."""
        if self.settings.ner_scope == "all":
            pieces = _chunks(text, self.settings.chunk_chars)
            return [(offset, offset + len(piece)) for offset, piece in pieces if piece.strip()]
        windows: list[tuple[int, int]] = []
        openers, paragraphs = words.layout()
        capitals = words.capitals  # only a capitalised word may be a name
        for first, last in paragraphs:
            low = high = -1  # the window being grown, in words
            for i in capitals[bisect_left(capitals, first) : bisect_left(capitals, last)]:
                if not words.may_name(i, opener=i in openers, known=known):
                    continue
                start, end = max(first, i - _CONTEXT_WORDS), min(last, i + _CONTEXT_WORDS + 1)
                if start <= high and end - low <= _MAX_WINDOW_WORDS:
                    high = end
                    continue
                if high > low:
                    windows.append(words.span(low, high))
                low, high = start, end
            if high > low:
                windows.append(words.span(low, high))
        return self._bounded(text, windows)

    def _bounded(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The windows, each longer than `chunk_chars` cut into pieces no longer: windows are
        counted in words, and one "word" may be a megabyte without a space, which spaCy
        refuses (E088) past its `max_length` and reads slowly long before."""
        limit = self.settings.chunk_chars
        if all(end - start <= limit for start, end in windows):
            return windows
        bounded: list[tuple[int, int]] = []
        for start, end in windows:
            if end - start <= limit:
                bounded.append((start, end))
                continue
            for offset, piece in _chunks(text[start:end], limit):
                if piece.strip():
                    bounded.append((start + offset, start + offset + len(piece)))
        return bounded

    def _person_names(
        self, text: str, source: Source, spans: Iterable[tuple[int, int]], taken: _Spans
    ) -> Iterator[Mention]:
        for start, last in sorted(set(spans)):  # windows may overlap: each entity once
            found = text[start:last]
            cut = found.find("\n")
            if cut > 0:  # the NER ran on into the next line ("Sarah Jones\nFamily Court")
                found = found[:cut]
            trimmed = _POSSESSIVE.sub("", found.rstrip()).rstrip()
            end = start + len(trimmed)
            if not trimmed or not trimmed[0].isupper() or taken.overlaps(start, end):
                continue
            if name_key(trimmed) in self.staff_keys:
                continue
            yield Mention(MentionKind.PERSON_NAME, trimmed, trimmed, source, start, end)

    # -- contact points and special categories --------------------------------------------

    @staticmethod
    def _emails(text: str, source: Source) -> Iterator[Mention]:
        if "@" not in text:
            return
        for match in _EMAIL.finditer(text):
            found = match.group()
            yield Mention(MentionKind.EMAIL_ADDRESS, found.casefold(), found, source, *match.span())

    @staticmethod
    def _postcodes(text: str, source: Source, taken: _Spans) -> Iterator[Mention]:
        if not any(digit in text for digit in _ASCII_DIGITS):
            return  # every postcode has a digit
        for match in POSTCODE_IN_TEXT.finditer(text):
            if taken and taken.overlaps(match.start(), match.end()):
                continue
            try:
                value = normalise_postcode(match.group(1) + match.group(2))
            except InvalidContact:
                continue
            yield Mention(MentionKind.POSTCODE, value, match.group(), source, *match.span())

    def _specials(
        self,
        text: str,
        source: Source,
        offset: int,
        postcodes: _Spans,
        words: set[str] | None = None,
    ) -> Iterator[Mention]:
        for hit in self.matcher.find_text(text, words):
            if postcodes and postcodes.overlaps(offset + hit.start, offset + hit.end):
                continue  # "S20 4AB" is a postcode, whatever a lexicon says of "S20"
            yield Mention(
                MentionKind.SPECIAL_CATEGORY,
                hit.category,
                text[hit.start : hit.end],
                source,
                offset + hit.start,
                offset + hit.end,
            )


# -- helpers --------------------------------------------------------------------------------


def _chunks(text: str, limit: int) -> list[tuple[int, str]]:
    """`text` in pieces of at most `limit` characters, cut at line breaks where possible."""
    if not text:
        return []
    pieces = []
    start = 0
    while len(text) - start > limit:
        cut = text.rfind("\n", start + limit // 2, start + limit)
        if cut < 0:
            cut = text.rfind(" ", start + limit // 2, start + limit)
        end = cut + 1 if cut >= 0 else start + limit
        pieces.append((start, text[start:end]))
        start = end
    pieces.append((start, text[start:]))
    return pieces


def _sentence_ends(text: str) -> Iterator[int]:
    """Where a sentence ends right after a word (closing quotes or brackets, full stops, a
    space): searched for from the marks, which the regex engine skips to, rather than from
    after every word."""
    for match in _TERMINATOR.finditer(text):
        start = match.start()
        while start and text[start - 1] in _CLOSERS:
            start -= 1
        if start and text[start - 1].isalnum():  # `isalnum` is the regex's [^\W_]
            yield start


class _Words:
    """The words (runs of letters and digits) of one text, and what stands between them."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Gaps and words in turn; their running lengths are where each word starts and ends.
        pieces = _WORD_SPLIT.split(text)
        bounds = list(accumulate(map(len, pieces)))
        self.starts: list[int] = bounds[0:-1:2]
        self.ends: list[int] = bounds[1::2]
        self.texts: list[str] = pieces[1::2]
        self._joins: dict[int, bool] = {}
        self._keys: dict[int, str] = {}
        self._capitals: list[int] | None = None
        self._distinct: set[str] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def distinct(self) -> set[str]:
        """The distinct words."""
        if self._distinct is None:
            self._distinct = set(self.texts)
        return self._distinct

    def reference_runs(self) -> set[str]:
        """Every distinct run `_REFERENCE_RUN` finds (words joined by one "/" or "-"), and
        perhaps some words inside them too: the words already found, and the few joined runs
        their joiners make, cost less than a second pass over the text."""
        runs = set(self.distinct())
        text, starts, ends = self.text, self.starts, self.ends
        joined = []  # words joined to the next one
        for joiner in _JOINER.finditer(text):
            at = joiner.start()
            i = bisect_left(ends, at)  # the word ending at the joiner, if one does
            if i + 1 < len(starts) and ends[i] == at and starts[i + 1] == at + 1:
                joined.append(i)
        first: int | None = None
        for position, i in enumerate(joined):
            first = i if first is None else first
            if position + 1 == len(joined) or joined[position + 1] != i + 1:  # a chain ends
                runs.add(text[starts[first] : ends[i + 1]])
                first = None
        return runs

    @property
    def capitals(self) -> list[int]:
        """The words that start with a capital letter, in order."""
        if self._capitals is None:
            self._capitals = [i for i, word in enumerate(self.texts) if word[0].isupper()]
        return self._capitals

    def gap(self, i: int) -> str:
        """What stands between word `i` and the next."""
        return self.text[self.ends[i] : self.starts[i + 1]]

    def joins(self, i: int) -> bool:
        """Whether word `i` and the next may be two words of one name."""
        joined = self._joins.get(i)
        if joined is None:
            gap = self.gap(i)
            joined = _NAME_GAP.fullmatch(gap) is not None
            if joined and "\n" in gap:
                # Only a hard-wrapped paragraph runs a name on to the next line; a short line
                # ends a thought ("…thanks Kelly" above a "Kelly" signature), and a very long
                # one was never wrapped (a paragraph as the mail program kept it).
                line_start = self.text.rfind("\n", 0, self.ends[i]) + 1
                joined = _WRAPPED_LINE[0] <= self.ends[i] - line_start <= _WRAPPED_LINE[1]
            self._joins[i] = joined
        return joined

    def spaced(self, i: int) -> bool:
        return self.text[self.ends[i]] in _SPACE_GAP

    def key(self, i: int) -> str:
        """Word `i` as `name_key` has it."""
        key = self._keys.get(i)
        if key is None:
            word = self.texts[i]
            key = self._keys[i] = word.casefold() if word.isascii() else name_key(word)
        return key

    def overlaps(self, i: int, spans: _Spans) -> bool:
        return spans.overlaps(self.starts[i], self.ends[i])

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Characters from word `first` to just before word `last`, less trailing space: the
        punctuation after a word stays with it, as the NER saw it in the whole text."""
        end = self.starts[last] if last < len(self) else len(self.text)
        while end > self.ends[last - 1] and self.text[end - 1].isspace():
            end -= 1
        return self.starts[first], end

    def layout(self) -> tuple[set[int], list[tuple[int, int]]]:
        """The words that open a sentence, and (first, one past the last word) of each
        paragraph."""
        count = len(self)
        openers = {0}
        if not count:
            return openers, []
        ends, texts = self.ends, self.texts
        # The gaps between words, found in one pass over the text: a gap holds nothing a
        # word does, so a match of either pattern lies within one gap.
        breaks = sorted(
            {
                i
                for i in (bisect_right(ends, m.start()) - 1 for m in _PARAGRAPH.finditer(self.text))
                if 0 <= i < count - 1
            }
        )
        paragraphs = []
        first = 0
        for i in breaks:
            paragraphs.append((first, i + 1))
            first = i + 1
            openers.add(i + 1)
        paragraphs.append((first, count))
        for start in _sentence_ends(self.text):
            i = bisect_left(ends, start)  # the word the gap follows
            if (
                i < count - 1
                and texts[i].casefold() not in _ABBREVIATIONS
                and len(texts[i]) > 1  # an initial: "J. Smith"
            ):
                openers.add(i + 1)
        return openers, paragraphs

    def may_name(self, i: int, *, opener: bool, known: _Spans) -> bool:
        """Whether word `i` could be part of a person's name the record does not explain: a
        capitalised word other than an ordinary sentence opener ("The", "Please"), a month
        or a weekday, or a title before a known name."""
        word = self.texts[i]
        if not word[0].isupper():
            return False
        lower = word.casefold()
        if lower in _NOT_NAMES or (opener and lower in STOP_WORDS):
            return False
        if not known:
            return True
        explained = self.overlaps(i, known)
        before_known = lower in _TITLES and i + 1 < len(self) and self.overlaps(i + 1, known)
        return not (explained or before_known)


class _Spans:
    """Character spans merged into sorted, disjoint intervals, for quick overlap questions."""

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(spans):
            if starts and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        self.starts, self.ends = starts, ends

    def __bool__(self) -> bool:
        return bool(self.starts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.starts, self.ends, strict=True)

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect_right(self.ends, start)  # the first interval ending after `start`
        return i < len(self.starts) and self.starts[i] < end
