"""HTML to plain text, as a reader sees it, keeping which text quotes an earlier message.

Built on the standard library's tolerant `html.parser`: script, style, head
and template content is dropped, block elements become line breaks, list
items "- " lines, links their text, entities are decoded and whitespace is
collapsed. Mail programs mark quoted earlier messages in HTML (`<blockquote>`,
Gmail's `div.gmail_quote`, Outlook's `#divRplyFwdMsg` and `#appendonsend`);
`html_to_segments` keeps that mark. Neither function ever raises.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from gatekeeper.item import Segment

# Content a reader never sees.
RAW_SKIPPED = frozenset({"script", "style", "title"})
HEAD_CONTENT = frozenset({"title", "meta", "link", "base", "style", "script", "noscript"})
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source"}
    | {"track", "wbr"}
)
BLOCK = frozenset(
    {"address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset"}
    | {"figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header"}
    | {"hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul", "caption"}
    | {"body", "html", "tbody", "thead", "tfoot", "details", "summary", "menu"}
)
# Blocks followed by an empty line, as a reader sees a paragraph end.
PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre"})
CELL = frozenset({"td", "th"})
# Containers whose content is a quoted earlier message.
QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "protonmail_quote", "moz-cite-prefix")
# Outlook marks where the earlier message starts; everything after it is quoted.
QUOTE_REST_IDS = ("divrplyfwdmsg", "appendonsend", "stopspelling")

SPACE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
BLANK_RUNS = re.compile(r"\n{3,}")
TAG = re.compile(r"<[^>]*>")


def html_to_text(markup: str) -> str:
    """The text of an HTML document, one line per block; never raises."""
    return "\n".join(segment.text for segment in html_to_segments(markup))


def html_to_segments(markup: str) -> tuple[Segment, ...]:
    """The text of an HTML document in runs, `quoted` where mail programs mark a quotation."""
    converter = _Converter()
    try:
        converter.feed(_defuse_unclosed_tags(markup))
        converter.close()
    except Exception:  # html.parser is tolerant; this is the last guard: keep every word
        return _segments([(line, False) for line in _strip_tags(markup).split("\n")])
    return _segments(converter.finish())


def _defuse_unclosed_tags(markup: str) -> str:
    # After the last ">" no tag can close; html.parser would rescan each "<" there (quadratic).
    last = markup.rfind(">")
    tail = markup[last + 1 :]
    return markup[: last + 1] + tail.replace("<", "&lt;") if "<" in tail else markup


def _strip_tags(markup: str) -> str:
    return "\n".join(
        SPACE.sub(" ", html.unescape(TAG.sub(" ", line))).strip() for line in markup.splitlines()
    )


class _Converter(HTMLParser):
    """Collects visible text line by line, each line marked quoted or not."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[tuple[str, bool]] = []
        self._pieces: list[str] = []
        self._line_quoted = False
        self._open: list[tuple[str, bool]] = []  # open elements and whether each quotes
        self._open_count: dict[str, int] = {}  # keeps unmatched end tags linear, not quadratic
        self._line_has_text = False
        self._quote_depth = 0
        self._quote_rest = False
        self._raw_skip: str | None = None  # inside <script> or <style>
        self._template_depth = 0
        self._in_head = False
        self._pre_depth = 0

    @property
    def _quoted(self) -> bool:
        return self._quote_rest or self._quote_depth > 0

    def _hidden(self) -> bool:
        return self._raw_skip is not None or self._template_depth > 0 or self._in_head

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in RAW_SKIPPED:
            self._raw_skip = tag
            return
        if tag == "template":
            self._template_depth += 1
            return
        if tag == "head":
            self._in_head = True
            return
        if self._in_head and tag not in HEAD_CONTENT:
            self._in_head = False  # as browsers do: body content ends an unclosed head
        if self._hidden():
            return
        self._open_element(tag, dict(attrs))

    def _open_element(self, tag: str, attributes: dict[str, str | None]) -> None:
        element_id = (attributes.get("id") or "").lower()
        if element_id.endswith(QUOTE_REST_IDS):
            self._quote_rest = True
        if tag == "br":
            self._newline()
        elif tag == "li":
            self._newline()
            self._pieces.append("- ")
        elif tag in BLOCK:
            self._newline()
        elif tag in CELL:
            self._pieces.append(" ")
        if tag == "pre":
            self._pre_depth += 1
        if tag in VOID:
            return
        quotes = tag == "blockquote" or _has_quote_class(attributes.get("class"))
        self._open.append((tag, quotes))
        self._open_count[tag] = self._open_count.get(tag, 0) + 1
        self._quote_depth += quotes

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw_skip:
            self._raw_skip = None
            return
        if tag == "template":
            self._template_depth = max(self._template_depth - 1, 0)
            return
        if tag == "head":
            self._in_head = False
            return
        if self._hidden() or not self._open_count.get(tag):
            return
        while self._open:
            name, quotes = self._open.pop()
            self._open_count[name] -= 1
            self._quote_depth -= quotes
            if name == "pre":
                self._pre_depth = max(self._pre_depth - 1, 0)
            if name == tag:
                break
        if tag in PARAGRAPH:
            self._newline()
            self._lines.append(("", self._quoted))
        elif tag in BLOCK:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self._in_head and data.strip() and self._raw_skip is None:
            self._in_head = False  # text in an unclosed head is shown by browsers
        if self._hidden():
            return
        if self._pre_depth:
            first, *rest = data.split("\n")
            self._add_text(first)
            for line in rest:
                self._newline()
                self._add_text(line)
            return
        self._add_text(SPACE.sub(" ", data))

    def _add_text(self, text: str) -> None:
        if not text:
            return
        if not self._line_has_text and not text.isspace():
            self._line_quoted = self._quoted
            self._line_has_text = True
        self._pieces.append(text)

    def _newline(self) -> None:
        line = SPACE.sub(" ", "".join(self._pieces)).strip()
        self._pieces = []
        self._line_has_text = False
        if line and line != "-":
            self._lines.append((line, self._line_quoted))

    def finish(self) -> list[tuple[str, bool]]:
        self._newline()
        return self._lines


def _has_quote_class(classes: str | None) -> bool:
    return bool(classes) and any(
        token.lower().startswith(QUOTE_CLASSES) for token in (classes or "").split()
    )


def _segments(lines: list[tuple[str, bool]]) -> tuple[Segment, ...]:
    """Consecutive lines with the same mark joined; blank lines at most one in a row."""
    runs: list[tuple[list[str], bool]] = []
    for text, quoted in _tidy(lines):
        if runs and (runs[-1][1] == quoted or not text):
            runs[-1][0].append(text)
        else:
            runs.append(([text], quoted))
    segments = (Segment(BLANK_RUNS.sub("\n\n", "\n".join(t)).strip("\n"), q) for t, q in runs)
    return tuple(segment for segment in segments if segment.text)


def _tidy(lines: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    tidy: list[tuple[str, bool]] = []
    for text, quoted in lines:
        if text or (tidy and tidy[-1][0]):
            tidy.append((text, quoted))
    while tidy and not tidy[-1][0]:
        tidy.pop()
    return tidy
