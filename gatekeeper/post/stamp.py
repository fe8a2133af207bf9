"""Stamping a released letter: a small QR code on every page, in the bottom-left margin.

The code (`gatekeeper.post.pagecode`) carries the letter's ref, the page
number and count and the addressee's party, so the scan station can prove
that an envelope holds exactly the pages of one released letter.

The stamp is a few lines of PDF drawing operators (one filled square per run
of dark modules, and a tiny label), appended to each page's content after the
page's own content, which is wrapped in `q ... Q` so nothing it leaves set can
move or hide the stamp. The letter's own content streams are never parsed or
rewritten: merging a drawn overlay page instead (reportlab + pypdf's
`merge_page`) re-parses every page and costs tens of milliseconds a page.
"""

from __future__ import annotations

import io

import segno
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    PdfObject,
    StreamObject,
)

from gatekeeper.post.pagecode import PageCode

MM = 72 / 25.4
CODE_SIZE = 15 * MM  # the whole symbol with its quiet zone, in points
MARGIN = 5 * MM  # from the page's left and bottom edges (printers lose about 4 mm)
QUIET_MODULES = 2  # of quiet zone: the page edge and the label keep the rest clear
LABEL_POINTS = 5.5
FONT = NameObject("/GKStampFont")
# A fixed mask spares segno trying all eight (most of its time); any mask reads fine.
QR_MASK = 2


class StampError(Exception):
    """The PDF could not be stamped; the letter is then held, never printed unstamped."""


def stamp_operators(code: PageCode, x: float, y: float) -> bytes:
    """PDF operators drawing the code's QR symbol at (x, y) and its label to the right."""
    matrix = segno.make_qr(str(code), error="m", mask=QR_MASK).matrix
    unit = CODE_SIZE / (len(matrix) + 2 * QUIET_MODULES)
    out = [f"1 g {x:.2f} {y:.2f} {CODE_SIZE:.2f} {CODE_SIZE:.2f} re f 0 g"]
    for row_number, row in enumerate(matrix):
        top = y + CODE_SIZE - (row_number + QUIET_MODULES + 1) * unit
        start: int | None = None
        for column, dark in enumerate([*row, 0]):
            if dark and start is None:
                start = column
            elif not dark and start is not None:  # one rectangle per run of dark modules
                left = x + (start + QUIET_MODULES) * unit
                out.append(f"{left:.3f} {top:.3f} {(column - start) * unit:.3f} {unit:.3f} re")
                start = None
    out.append("f")
    label = f"GK {code.ref} {code.page}/{code.pages}"
    out.append(
        f"BT {FONT} {LABEL_POINTS} Tf {x + CODE_SIZE + MM:.2f} {y + MM:.2f} Td ({label}) Tj ET"
    )
    return ("\n".join(out) + "\n").encode("ascii")


def _stream(writer: PdfWriter, data: bytes) -> IndirectObject:
    stream = StreamObject()
    stream.set_data(data)
    return writer._add_object(stream)


def _resources(page: DictionaryObject) -> DictionaryObject:
    """The page's resource dictionary, inherited from its parents if it has none of its own."""
    node: PdfObject | None = page
    while node is not None:
        node = node.get_object()
        assert isinstance(node, DictionaryObject)
        if "/Resources" in node:
            resources = node["/Resources"].get_object()
            assert isinstance(resources, DictionaryObject)
            if node is not page:  # a private copy, so the other pages' inheritance is unchanged
                resources = DictionaryObject(resources)
                page[NameObject("/Resources")] = resources
            return resources
        node = node.get("/Parent")
    resources = DictionaryObject()
    page[NameObject("/Resources")] = resources
    return resources


def stamp_letter(pdf: bytes, ref: str, party_id: str | None) -> bytes:
    """The letter with its page code on every page; raises `StampError` if it cannot be."""
    try:
        reader = PdfReader(io.BytesIO(pdf))
        if reader.is_encrypted:
            reader.decrypt("")  # only owner-locked PDFs get here: the gate read them
        writer = PdfWriter(clone_from=reader)
        font = writer._add_object(
            DictionaryObject(
                {
                    NameObject("/Type"): NameObject("/Font"),
                    NameObject("/Subtype"): NameObject("/Type1"),
                    NameObject("/BaseFont"): NameObject("/Helvetica"),
                }
            )
        )
        save, restore = _stream(writer, b"q\n"), _stream(writer, b"Q\n")
        count = len(writer.pages)
        for number, page in enumerate(writer.pages, start=1):
            box = page.mediabox
            x, y = float(box.left) + MARGIN, float(box.bottom) + MARGIN
            stamp = _stream(writer, stamp_operators(PageCode(ref, number, count, party_id), x, y))
            existing = page.get("/Contents")
            own: list[PdfObject] = []
            if existing is not None:
                resolved = existing.get_object()
                own = list(resolved) if isinstance(resolved, ArrayObject) else [existing]
            page[NameObject("/Contents")] = ArrayObject([save, *own, restore, stamp])
            resources = _resources(page)
            fonts = resources.get("/Font")
            fonts = DictionaryObject() if fonts is None else fonts.get_object()
            assert isinstance(fonts, DictionaryObject)
            fonts[FONT] = font
            resources[NameObject("/Font")] = fonts
        out = io.BytesIO()
        writer.write(out)
    except Exception as error:
        raise StampError(f"the letter could not be stamped: {type(error).__name__}") from error
    return out.getvalue()
