"""Real letters for the tests: A4 PDFs laid out as an office's letter template lays them out.

The layout is `gatekeeper.post.samples.letter_pdf` (the demo's sample letters
too): a letterhead, the address block where a DL window envelope shows it,
the date, a salutation and the body, over as many pages as asked. Built with
reportlab, so each test reads a real PDF.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from gatekeeper.post import samples
from gatekeeper.post.samples import LETTERHEAD

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
    """A letter (to Mark Smith about case 853206 unless told otherwise), `pages` pages long."""
    return samples.letter_pdf(
        address,
        body,
        salutation=salutation,
        pages=pages,
        address_at_mm=address_at_mm,
        letterhead=letterhead,
    )


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
