"""Every page of a released letter carries its code, and the scan station can read it back."""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader, PdfWriter

from gatekeeper.post.letter import read_letter
from gatekeeper.post.pagecode import PageCode
from gatekeeper.post.stamp import StampError, stamp_letter
from tests.conftest import need_program
from tests.letters import MARK, letter_pdf
from tests.mailfiles import owner_locked_pdf


def rendered_codes(pdf: bytes, dpi: int = 150) -> list[list[str]]:
    """Each page rendered as a scanner sees a sheet, and the codes zxing-cpp reads on it."""
    need_program("pdftoppm")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "letter.pdf"
        source.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", str(dpi), "-gray", "-png", str(source), str(Path(folder) / "p")],
            check=True,
            capture_output=True,
        )
        return [
            [b.text for b in zxingcpp.read_barcodes(Image.open(page))]
            for page in sorted(Path(folder).glob("p*.png"))
        ]


def test_the_page_code_says_letter_page_count_and_addressee() -> None:
    code = PageCode("K7Q2M9XD", 3, 5, "853206-P3")
    assert str(code) == "GK1:K7Q2M9XD:3/5:853206-P3"
    assert PageCode.parse(" GK1:K7Q2M9XD:3/5:853206-P3\n") == code
    assert PageCode.parse("gk1:k7q2m9xd:1/1:-") == PageCode("K7Q2M9XD", 1, 1, None)
    for wrong in ("GK1:K7Q2M9XD:6/5:-", "GK1:K7Q2M9XD:0/5:-", "5012345678900", "GK2:AB:1/1:-"):
        assert PageCode.parse(wrong) is None


@pytest.mark.parametrize("dpi", [100, 150, 300])
def test_each_page_of_a_stamped_letter_carries_a_readable_code(dpi: int) -> None:
    stamped = stamp_letter(letter_pdf(MARK, pages=4), "K7Q2M9XD", "853206-P3")
    assert rendered_codes(stamped, dpi) == [[f"GK1:K7Q2M9XD:{n}/4:853206-P3"] for n in range(1, 5)]


def test_stamping_leaves_the_letter_as_written() -> None:
    original = letter_pdf(MARK, pages=2)
    stamped = stamp_letter(original, "K7Q2M9XD", None)
    before, after = read_letter(original), read_letter(stamped)
    assert after.addressee == before.addressee
    assert after.text.replace("GK K7Q2M9XD 1/2", "").replace("GK K7Q2M9XD 2/2", "").split() == (
        before.text.split()
    )
    assert [p.mediabox for p in PdfReader(io.BytesIO(stamped)).pages] == [
        p.mediabox for p in PdfReader(io.BytesIO(original)).pages
    ]


def test_pages_with_their_origin_elsewhere_and_owner_locked_pdfs_are_stamped() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(letter_pdf(MARK))))
    page = writer.pages[0]
    page.mediabox.lower_left = (-100, -50)
    page.mediabox.upper_right = (495.28, 791.89)
    shifted = io.BytesIO()
    writer.write(shifted)
    assert rendered_codes(stamp_letter(shifted.getvalue(), "ABCD1234", "x")) == [
        ["GK1:ABCD1234:1/1:x"]
    ]
    assert rendered_codes(stamp_letter(owner_locked_pdf("Hello"), "ABCD1234", None)) == [
        ["GK1:ABCD1234:1/1:-"]
    ]


def test_what_cannot_be_stamped_says_so() -> None:
    with pytest.raises(StampError, match="could not be stamped"):
        stamp_letter(b"%PDF-1.4 broken", "ABCD1234", None)
