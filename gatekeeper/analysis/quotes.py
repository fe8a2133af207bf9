"""Which parts of a message body quote earlier messages, by the conventions mail programs use.

A reply or forward carries the earlier correspondence below the new text:
lines starting with ">", or everything after an attribution line ("On Mon,
3 Mar 2025 at 10:02, Jane Smith <jane@x> wrote:", "-----Original
Message-----", an Outlook "From: / Sent: / To: / Subject:" block, a
forwarded-message banner). The checks weigh what the sender wrote now apart
from what is quoted, so each run of text becomes a `Segment`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gatekeeper.item import Segment

BANNER = re.compile(
    r"""^[\s*]*(?:
        -{2,}\s*original\s+message\s*-{2,}
      | -{2,}\s*forwarded\s+message\s*-{2,}
      | begin\s+forwarded\s+message\s*:
    )""",
    re.IGNORECASE | re.VERBOSE,
)
HEADER_LINE = re.compile(r"^[\s*]*(from|sent|date|to|cc|subject)\s*:\s*\*?", re.IGNORECASE)
SEPARATOR = re.compile(r"^\s*(?:_{8,}|-{8,})\s*$")
# Gmail wraps a long "On ... wrote:" line; it is never longer than this many lines.
WROTE_LINES = 3
# An Outlook header block: From:, then Sent:/Date: and To:/Subject: within these lines.
HEADER_BLOCK_LINES = 8


def text_segments(text: str) -> tuple[Segment, ...]:
    """A plain-text body split into new and quoted runs."""
    return quote_segments((Segment(text),))


def quote_segments(segments: Iterable[Segment]) -> tuple[Segment, ...]:
    """Segments with quotations marked; after an attribution line everything is quoted."""
    marked: list[tuple[str, bool]] = []
    rest_quoted = False
    for segment in segments:
        lines = segment.text.split("\n")
        if segment.quoted or rest_quoted:
            marked.extend((line, True) for line in lines)
            continue
        start = attribution_line(lines)
        if start is not None:
            rest_quoted = True
        marked.extend((line, _is_quote_line(line)) for line in lines[:start])
        marked.extend((line, True) for line in lines[len(lines) if start is None else start :])
    return _runs(marked)


def attribution_line(lines: list[str]) -> int | None:
    """Index of the first line that introduces an earlier message, or None."""
    for index in range(len(lines)):
        if _introduces_earlier_message(lines, index):
            previous = index - 1
            while previous >= 0 and not lines[previous].strip():
                previous -= 1
            return previous if previous >= 0 and SEPARATOR.match(lines[previous]) else index
    return None


def _introduces_earlier_message(lines: list[str], index: int) -> bool:
    line = lines[index]
    if not line or len(line) > 1000:
        return False
    if BANNER.match(line):
        return True
    if line.lstrip(" *\t").lower().startswith("on "):
        return any(_wrote(" ".join(lines[index : index + n])) for n in range(1, WROTE_LINES + 1))
    return _outlook_header_block(lines, index)


def _wrote(line: str) -> bool:
    """ "On <a date>, <someone> wrote:" (the date's digits tell it from ordinary prose)."""
    words = line.strip(" *\t").lower()
    return words.replace(" ", "").endswith("wrote:") and any(c.isdigit() for c in words)


def _outlook_header_block(lines: list[str], index: int) -> bool:
    first = HEADER_LINE.match(lines[index])
    if not first or first.group(1).lower() != "from":
        return False
    names = {
        match.group(1).lower()
        for line in lines[index + 1 : index + HEADER_BLOCK_LINES]
        if (match := HEADER_LINE.match(line))
    }
    return bool(names & {"sent", "date"}) and bool(names & {"to", "subject"})


def _is_quote_line(line: str) -> bool:
    return line.lstrip(" \t").startswith(">")


def _runs(lines: list[tuple[str, bool]]) -> tuple[Segment, ...]:
    """Consecutive lines with the same mark as one segment; blank lines join the run before."""
    runs: list[tuple[list[str], bool]] = []
    for line, quoted in lines:
        if runs and (runs[-1][1] == quoted or not line.strip()):
            runs[-1][0].append(line)
        else:
            runs.append(([line], quoted))
    segments = (Segment("\n".join(text).strip("\n"), quoted) for text, quoted in runs)
    return tuple(segment for segment in segments if segment.text.strip())
