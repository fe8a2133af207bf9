"""Reading a letter: its text, page count and the addressee from the address block.

Every letter is a real PDF (reportlab), laid out as an office template lays
one out; the scanned ones are rendered to pictures with pdftoppm first.
"""

from __future__ import annotations

import pytest

from gatekeeper.item import Channel, PostalAddressee, RecipientKind
from gatekeeper.post.address_block import AddressWindow, parse_block
from gatekeeper.post.letter import item_from_letter, read_letter
from tests.bombs import MB, pdf_bomb
from tests.conftest import need_program
from tests.letters import MARK, POSTSCRIPT_JOB, image_only_letter, letter_pdf
from tests.mailfiles import encrypted_pdf, owner_locked_pdf, scanned_pdf, truncated_pdf

MARK_ADDRESSEE = PostalAddressee("Mr Mark Smith", ("3 Oak Road", "Bradford"), "BD1 4QQ")


def test_the_addressee_is_read_where_the_window_shows_it() -> None:
    letter = read_letter(letter_pdf(MARK))
    assert letter.addressee == MARK_ADDRESSEE
    assert letter.found_in == "window"
    assert letter.pages == 1 and letter.problems == ()


def test_the_address_block_is_not_part_of_the_letters_content() -> None:
    letter = read_letter(letter_pdf(MARK))
    assert "3 Oak Road" not in letter.text and "BD1 4QQ" not in letter.text
    assert "Dear Mr Smith," in letter.text and "Gatekeeper Family Services" in letter.text


def test_a_block_outside_the_window_is_found_nearest_to_it_not_the_letterhead() -> None:
    letter = read_letter(letter_pdf(MARK, address_at_mm=(30, 18)))
    assert letter.addressee == MARK_ADDRESSEE
    assert letter.found_in == "block"


def test_the_window_position_is_a_setting() -> None:
    window = AddressWindow.parse("100,60,90,40")
    letter = read_letter(letter_pdf(MARK, address_at_mm=(105, 65)), window)
    assert (letter.addressee, letter.found_in) == (MARK_ADDRESSEE, "window")
    with pytest.raises(ValueError, match="four numbers"):
        AddressWindow.parse("20,45,90")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["Private and Confidential", "Mr Mark Smith", "3 Oak Road", "Bradford", "bd14qq"],
         MARK_ADDRESSEE),
        (["Mr Mark Smith", "3 Oak Road", "Bradford BD1 4QQ", "United Kingdom"], MARK_ADDRESSEE),
        (["Mr Mark Smith, 3 Oak Road, Bradford, BD1 4QQ"], MARK_ADDRESSEE),
        (["If undelivered return to: 1 City Square, Leeds LS1 2ES", "Mr Mark Smith",
          "3 Oak Road", "Bradford BD1 4QQ"], MARK_ADDRESSEE),
        (["Mr Mark Smith", "3 Oak Road", "Bradford"], None),  # no postcode: no address block
        (["BD1 4QQ"], None),
    ],
)  # fmt: skip
def test_address_block_shapes(lines: list[str], expected: PostalAddressee | None) -> None:
    assert parse_block(lines) == expected


def test_a_letter_becomes_one_postal_item() -> None:
    item = item_from_letter(letter_pdf(MARK, pages=2), sender="a.jones@gatekeeper.example")
    assert item.channel is Channel.POST
    assert item.sender == "a.jones@gatekeeper.example"
    [recipient] = item.recipients
    assert recipient.kind is RecipientKind.POSTAL and recipient.postal == MARK_ADDRESSEE
    assert recipient.label() == "Mr Mark Smith, 3 Oak Road, Bradford BD1 4QQ"
    assert item.extra["pages"] == "2" and "Page 2" in item.body_text
    assert item.original is not None and item.original.size > 0


def test_an_owner_locked_pdf_is_read_like_any_other() -> None:
    letter = read_letter(owner_locked_pdf("Mr Mark Smith, 3 Oak Road, Bradford BD1 4QQ"))
    assert letter.problems == ()
    assert letter.addressee == PostalAddressee(
        "Mr Mark Smith", ("3 Oak Road", "Bradford"), "BD1 4QQ"
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (encrypted_pdf("Mr Mark Smith\n3 Oak Road\nBradford BD1 4QQ"), "encrypted PDF"),
        (truncated_pdf(), "corrupt PDF"),
        (POSTSCRIPT_JOB, "PostScript print job"),
        (b"\x1b%-12345X@PJL JOB\r\n", "not a PDF"),
        (b"", "empty print job"),
        (letter_pdf(("Mr Mark Smith", "3 Oak Road", "Bradford")), "no address block"),
        (pdf_bomb(101 * MB, "double"), "PDF unpacks to more than 100 MB (a PDF bomb?)"),
    ],
)
def test_what_cannot_be_read_is_a_problem_on_the_item(document: bytes, problem: str) -> None:
    item = item_from_letter(document, sender="a.jones@gatekeeper.example")
    assert any(problem in p for p in item.problems), item.problems


def test_a_scanned_letter_without_ocr_is_a_problem() -> None:
    letter = read_letter(scanned_pdf(2), ocr=False)
    assert letter.addressee is None
    assert letter.problems == (
        "the letter has no text layer (a scanned image?) and OCR (tesseract) is not installed: "
        "it cannot be checked",
    )


def test_a_scanned_letter_is_read_with_ocr_when_tesseract_is_installed() -> None:
    need_program("tesseract")
    need_program("pdftoppm")
    letter = read_letter(image_only_letter(MARK))
    assert letter.ocr_pages == (1,)
    assert letter.problems == ()
    assert letter.addressee is not None and letter.addressee.postcode == "BD1 4QQ"
    assert letter.found_in == "ocr window"
    assert "853206" in letter.text


def test_a_scan_with_nothing_to_read_is_held_even_with_ocr() -> None:
    need_program("tesseract")
    letter = read_letter(scanned_pdf(), ocr=True)
    assert letter.problems and "no text layer" in letter.problems[0]
