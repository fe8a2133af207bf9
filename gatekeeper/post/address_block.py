"""The address block of a letter: where a window envelope shows it, or the likeliest other block.

A window envelope shows one rectangle of the first page (a UK DL window: about
20 mm from the left, 45 mm from the top, 90 x 45 mm). The lines printed there
are the address block: the name first, the postcode last. When nothing
address-like is in the window (a letter laid out for another envelope), the
block ending in a UK postcode nearest the window is taken instead; a
letterhead's own address usually sits further away.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gatekeeper.contact import POSTCODE_IN_TEXT, InvalidContact, normalise_postcode
from gatekeeper.item import PostalAddressee

POINTS_PER_MM = 72 / 25.4
# Lines printed above the name that are no part of the address.
_MARKERS = re.compile(
    r"^(?:(?:strictly\s+)?private(?:\s*(?:and|&)\s*confidential)?|confidential|personal"
    r"|addressee\s+only|urgent|by\s+hand|first\s+class|second\s+class|recorded(?:\s+delivery)?"
    r"|special\s+delivery|signed\s+for)\W*$",
    re.IGNORECASE,
)
_COUNTRY = re.compile(
    r"^(?:uk|u\.k\.|united\s+kingdom|great\s+britain|england|wales|scotland)$", re.I
)
MAX_BLOCK_LINES = 9


@dataclass(frozen=True)
class AddressWindow:
    """The part of the first page a window envelope shows, in millimetres from the top left."""

    left_mm: float = 20.0
    top_mm: float = 45.0
    width_mm: float = 90.0
    height_mm: float = 45.0

    @classmethod
    def parse(cls, text: str) -> AddressWindow:
        """`20,45,90,45` (left, top, width, height in mm); raises ValueError saying why not."""
        parts = [p.strip() for p in text.split(",")]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) != 4 or any(n < 0 for n in numbers) or not numbers[2] or not numbers[3]:
            raise ValueError(
                f"the address window is four numbers in mm: left, top, width, height "
                f"(e.g. 20,45,90,45), not {text!r}"
            )
        return cls(*numbers)

    def box(self, page_height: float) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in PDF points, for a page this tall."""
        left = self.left_mm * POINTS_PER_MM
        top = page_height - self.top_mm * POINTS_PER_MM
        return (
            left,
            top - self.height_mm * POINTS_PER_MM,
            left + self.width_mm * POINTS_PER_MM,
            top,
        )

    def __str__(self) -> str:
        return f"{self.left_mm:g},{self.top_mm:g},{self.width_mm:g},{self.height_mm:g}"


DL_WINDOW = AddressWindow()


@dataclass(frozen=True)
class TextLine:
    """One printed line of a page, with its box in PDF points (origin bottom left)."""

    text: str
    left: float
    bottom: float
    right: float
    top: float

    @property
    def height(self) -> float:
        return max(self.top - self.bottom, 1.0)

    def inside(self, box: tuple[float, float, float, float]) -> bool:
        """Whether the line's middle lies in the box (a line that strays a little still counts)."""
        left, bottom, right, top = box
        x = min(self.left + 6.0, (self.left + self.right) / 2)  # a long line: its start
        y = (self.bottom + self.top) / 2
        return left <= x <= right and bottom <= y <= top


def join_segments(segments: Iterable[TextLine]) -> list[TextLine]:
    """Text runs grouped into lines (same baseline), left to right; lines top to bottom."""
    lines: list[list[TextLine]] = []
    for segment in sorted(segments, key=lambda s: (-s.top, s.left)):
        if not segment.text.strip():
            continue
        for line in lines:
            first = line[0]
            overlap = min(first.top, segment.top) - max(first.bottom, segment.bottom)
            left, right = min(p.left for p in line), max(p.right for p in line)
            apart = max(segment.left - right, left - segment.right)  # columns stay apart
            if overlap > 0.5 * min(first.height, segment.height) and apart < 3 * first.height:
                line.append(segment)
                break
        else:
            lines.append([segment])
    joined = []
    for parts in lines:
        parts.sort(key=lambda s: s.left)
        text = ""
        for previous, part in zip([None, *parts], parts, strict=False):
            gap = part.left - previous.right if previous else 0.0
            text += (" " if previous and gap > 1.0 else "") + part.text.strip()
        joined.append(
            TextLine(
                text,
                min(p.left for p in parts),
                min(p.bottom for p in parts),
                max(p.right for p in parts),
                max(p.top for p in parts),
            )
        )
    return sorted(joined, key=lambda line: -line.top)


def blocks_of(lines: Sequence[TextLine]) -> list[list[TextLine]]:
    """Lines grouped into blocks: left-aligned, each close below the one before."""
    blocks: list[list[TextLine]] = []
    for line in lines:
        for block in reversed(blocks):
            last = block[-1]
            gap = last.bottom - line.top
            aligned = abs(line.left - block[0].left) < 12.0 or abs(line.right - last.right) < 12.0
            if -0.5 * line.height < gap < 1.2 * max(line.height, last.height) and aligned:
                block.append(line)
                break
        else:
            blocks.append([line])
    return blocks


def parse_block(lines: Sequence[str]) -> PostalAddressee | None:
    """Name, address lines and postcode from an address block's lines; None if it is none.

    The postcode may stand on its own line or end the town's ("Bradford BD1 4QQ"); a
    single line may hold the whole address, comma-separated.
    """
    cleaned = [re.sub(r"\s+", " ", line).strip(" ,") for line in lines]
    cleaned = [line for line in cleaned if line]
    if len(cleaned) <= 2 and any("," in line for line in cleaned):
        cleaned = [part.strip() for line in cleaned for part in line.split(",") if part.strip()]
    while cleaned and _COUNTRY.match(cleaned[-1]):
        cleaned = cleaned[:-1]
    for position in range(len(cleaned) - 1, 0, -1):
        found = _postcode_at_end(cleaned[position])
        if found is None:
            continue
        postcode, rest = found
        # A return address above the block ("If undelivered return to ... LS1 2ES") is no part.
        start = next(
            (i + 1 for i in range(position - 1, -1, -1) if _postcode_at_end(cleaned[i])), 0
        )
        while start < position and _MARKERS.match(cleaned[start]):
            start += 1
        body = [*cleaned[start + 1 : position], *([rest] if rest else [])]
        if start >= position or not body or position - start + 1 > MAX_BLOCK_LINES:
            return None
        return PostalAddressee(name=cleaned[start], lines=tuple(body), postcode=postcode)
    return None


def _postcode_at_end(line: str) -> tuple[str, str] | None:
    """(the normalised postcode, the rest of the line) when the line ends in a UK postcode."""
    matches = list(POSTCODE_IN_TEXT.finditer(line))
    if not matches:
        return None
    last = matches[-1]
    if line[last.end() :].strip(" .,"):
        return None
    try:
        postcode = normalise_postcode(last.group(0))
    except InvalidContact:
        return None
    return postcode, line[: last.start()].strip(" ,")


@dataclass(frozen=True)
class FoundBlock:
    addressee: PostalAddressee
    found_in: str  # "window" or "block"
    lines: tuple[str, ...]  # the block's printed lines, as they stand in the page's text


def find_address_block(
    lines: Sequence[TextLine], page_width: float, page_height: float, window: AddressWindow
) -> FoundBlock | None:
    """The address block: what the window shows, else the address-like block nearest to it.

    Only blocks starting in the left half of the page are taken: a letterhead's own address
    stands on the right, and a UK window envelope's window on the left.
    """
    box = window.box(page_height)
    shown = [line.text for line in lines if line.inside(box)]
    addressee = parse_block(shown)
    if addressee is not None:
        return FoundBlock(addressee, "window", tuple(shown))
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    candidates = []
    for order, block in enumerate(blocks_of(lines)):
        if block[0].left > page_width / 2:
            continue
        texts = tuple(line.text for line in block)
        found = parse_block(texts)
        if found is None:
            continue
        x = (block[0].left + max(line.right for line in block)) / 2
        y = (block[0].top + block[-1].bottom) / 2
        distance = ((x - centre[0]) ** 2 + (y - centre[1]) ** 2) ** 0.5
        candidates.append((distance, order, FoundBlock(found, "block", texts)))
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def without_lines(text: str, lines: Iterable[str]) -> str:
    """`text` with each of `lines` taken out once: a letter's text without its address block."""
    remaining = text.split("\n")
    for wanted in lines:
        key = " ".join(wanted.split())
        for position, line in enumerate(remaining):
            if " ".join(line.split()) == key:
                del remaining[position]
                break
    return "\n".join(remaining)


def find_block_in_text(text: str) -> PostalAddressee | None:
    """The first address-like block in plain text (OCR output: blocks apart by blank lines)."""
    for chunk in re.split(r"\n\s*\n", text):
        lines = [line for line in chunk.splitlines() if line.strip()]
        for end in range(len(lines)):
            if _postcode_at_end(lines[end]) is None:
                continue
            start = max(0, end - MAX_BLOCK_LINES + 1)
            found = parse_block(lines[start : end + 1])
            if found is not None:
                return found
    return None
