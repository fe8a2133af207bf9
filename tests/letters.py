"""Real letters for the tests: A4 PDFs laid out as an office's letter template lays them out.

A letterhead at the top right, the address block where a DL window envelope
shows it (25 mm from the left, 50 mm from the top), the date, a salutation,
the body wrapped at the margin, and more pages when the text runs over.
Built with reportlab, so each test reads a real PDF.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

LETTERHEAD = ("Gatekeeper Family Services", "1 City Square", "Leeds LS1 2ES")
MARK = ("Mr Mark Smith", "3 Oak Road", "Bradford", "BD1 4QQ")
JANE = ("Ms Jane Smith", "Flat 2", "14 Mill Lane", "Leeds LS6 2AB")
PRIYA = ("Priya Shah", "Shah & Co Solicitors", "1 Park Row", "Leeds", "LS1 5HN")

CLEAN_BODY = (
    "Re: Tom Smith, case 853206\n\n"
    "Thank you for attending the meeting on Tuesday. As discussed, the next contact session "
    "will be at the family centre on 14 March at 10am. Please let me know if that time does "
    "not suit you.\n\nYours sincerely,\n\nAlice Jones\nFamily Court Adviser"
)


def letter_pdf(
    address: Sequence[str] = MARK,
    body: str = CLEAN_BODY,
    *,
    salutation: str = "Dear Mr Smith,",
    pages: int = 1,
    address_at_mm: tuple[float, float] = (25, 50),
    letterhead: Sequence[str] = LETTERHEAD,
) -> bytes:
    """A letter: `pages` pages long (the body is repeated on follow-on pages)."""
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pagesize=A4)
    width, height = A4
    for page in range(1, pages + 1):
        document.setFont("Helvetica", 10)
        if page == 1:
            for number, line in enumerate(letterhead):
                document.drawRightString(width - 20 * mm, height - (15 * mm + number * 12), line)
            left, top = address_at_mm
            for number, line in enumerate(address):
                document.drawString(left * mm, height - (top * mm + number * 12), line)
            y = height - 105 * mm
            document.drawString(25 * mm, y, "3 March 2025")
            y -= 24
            document.drawString(25 * mm, y, salutation)
            y -= 20
        else:
            y = height - 25 * mm
            document.drawString(25 * mm, y, f"Page {page}")
            y -= 20
        for paragraph in body.split("\n"):
            for line in textwrap.wrap(paragraph, 90) or [""]:
                document.drawString(25 * mm, y, line)
                y -= 13
        document.showPage()
    document.save()
    return buffer.getvalue()


def image_only_letter(*args: object, **kwargs: object) -> bytes:
    """The same letter scanned: each page a picture only (rendered with pdftoppm), no text."""
    pdf = letter_pdf(*args, **kwargs)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "letter.pdf"
        source.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", "200", "-gray", "-png", str(source), str(Path(folder) / "p")],
            check=True,
            capture_output=True,
        )
        buffer = io.BytesIO()
        document = canvas.Canvas(buffer, pagesize=A4)
        for image in sorted(Path(folder).glob("p*.png")):
            document.drawImage(ImageReader(str(image)), 0, 0, width=A4[0], height=A4[1])
            document.showPage()
        document.save()
    return buffer.getvalue()


POSTSCRIPT_JOB = b"""%!PS-Adobe-3.0
%%Pages: 1
%%EndComments
/Helvetica findfont 12 scalefont setfont
72 720 moveto (Mr Mark Smith) show
72 706 moveto (3 Oak Road) show
72 692 moveto (Bradford BD1 4QQ) show
showpage
%%EOF
"""
