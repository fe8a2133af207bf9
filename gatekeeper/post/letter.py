"""A letter as the gate sees it: the PDF's text page by page, and the addressee read from the
address block, made into one `Item` for channel `post`.

Nothing here raises. What cannot be read (an encrypted or corrupt PDF, a
PostScript job, pages that are only pictures when OCR is not installed or
reads nothing, a letter with no address block) becomes a problem on the item,
and `unreadable_content` holds it for a person: a letter is never printed
unchecked.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from gatekeeper.analysis.extract import PDF_MAGIC, PDFIUM_LOCK, clip_text
from gatekeeper.analysis.limits import DEFAULT_LIMITS, MailLimits
from gatekeeper.analysis.pdf_bombs import ENCRYPTED_PDF, pdf_unpack_problem
from gatekeeper.item import (
    Channel,
    Item,
    OriginalRef,
    PostalAddressee,
    Recipient,
    RecipientKind,
    Segment,
)
from gatekeeper.post.address_block import (
    DL_WINDOW,
    POINTS_PER_MM,
    AddressWindow,
    TextLine,
    find_address_block,
    find_block_in_text,
    join_segments,
    parse_block,
    without_lines,
)
from gatekeeper.post.ocr import ocr_available, ocr_page

POSTSCRIPT = (
    "PostScript print job: only PDF letters can be checked (print from a program that "
    "sends PDF, or save the letter as PDF and print that)"
)
CORRUPT = "corrupt PDF: it could not be opened"
NO_PAGES = "corrupt PDF: it has no pages"
UNREADABLE_PAGES = "corrupt PDF: its pages could not be read"


@dataclass(frozen=True)
class Letter:
    """What was read from one letter."""

    addressee: PostalAddressee | None
    found_in: str  # "window", "block", "ocr window", "ocr" or "" (not found)
    text: str
    pages: int
    problems: tuple[str, ...] = ()
    ocr_pages: tuple[int, ...] = ()  # pages whose text came from OCR (1-based)


@dataclass
class _Pages:
    count: int
    texts: list[str]
    first_lines: list[TextLine]
    first_size: tuple[float, float]
    pictures: list[int]  # 1-based pages with no text but images


def not_pdf_problem(data: bytes) -> str | None:
    """Why a print job is no PDF we can read, or None when it is one."""
    head = data[:1024]
    if PDF_MAGIC in head:
        return None
    if b"%!PS" in head:
        return POSTSCRIPT
    if not data:
        return "empty print job: there is nothing to check"
    return "the print job is not a PDF (PCL or a printer's own language?): it cannot be checked"


def _read_pages(data: bytes, limits: MailLimits) -> _Pages | str:
    """Every page's text, and the first page's lines with their positions; or the problem."""
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            if error.err_code in (pdfium_raw.FPDF_ERR_PASSWORD, pdfium_raw.FPDF_ERR_SECURITY):
                return ENCRYPTED_PDF
            return CORRUPT
        except Exception:  # PDFium rejects what it cannot open; anything else is corrupt too
            return CORRUPT
        try:
            return _pages_of(document, limits)
        except Exception:
            return UNREADABLE_PAGES
        finally:
            document.close()


def _pages_of(document: pdfium.PdfDocument, limits: MailLimits) -> _Pages | str:
    count = len(document)
    if count == 0:
        return NO_PAGES
    pages = _Pages(count, [], [], (0.0, 0.0), [])
    for index in range(min(count, limits.max_pdf_pages)):
        page = document[index]
        try:
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range().replace("\r\n", "\n")
                if index == 0:
                    pages.first_size = (page.get_width(), page.get_height())
                    segments = []
                    for number in range(textpage.count_rects()):
                        box = textpage.get_rect(number)
                        segments.append(TextLine(textpage.get_text_bounded(*box), *box))
                    pages.first_lines = join_segments(segments)
            finally:
                textpage.close()
            if not text.strip():
                images = page.get_objects(filter=(pdfium_raw.FPDF_PAGEOBJ_IMAGE,), max_depth=4)
                if next(images, None) is not None:
                    pages.pictures.append(index + 1)
        finally:
            page.close()
        pages.texts.append(text)
    return pages


def read_letter(
    data: bytes,
    window: AddressWindow = DL_WINDOW,
    limits: MailLimits = DEFAULT_LIMITS,
    ocr: bool | None = None,
) -> Letter:
    """Text, page count and addressee of a PDF letter, with whatever could not be read.

    `ocr`: read picture-only pages with tesseract; None means when it is installed.
    """
    wrong = not_pdf_problem(data) or pdf_unpack_problem(data, limits)
    if wrong:
        return Letter(None, "", "", 0, (wrong,))
    pages = _read_pages(data, limits)
    if isinstance(pages, str):
        return Letter(None, "", "", 0, (pages,))
    problems: list[str] = []
    blank = not any(text.strip() for text in pages.texts)
    block = find_address_block(pages.first_lines, *pages.first_size, window)
    addressee, found_in = (block.addressee, block.found_in) if block else (None, "")
    if block is not None:  # the address block is the envelope's, not the letter's content
        pages.texts[0] = without_lines(pages.texts[0], block.lines)
    ocr_done: list[int] = []
    use_ocr = ocr_available() if ocr is None else ocr
    if pages.pictures and use_ocr:
        addressee, found_in = _ocr(data, pages, window, found=(addressee, found_in), done=ocr_done)
    unread = [n for n in pages.pictures if n not in ocr_done]
    text = "\n".join(pages.texts).strip()
    if unread:
        problems.append(_pictures_problem(unread, pages.count, use_ocr))
    elif blank and not ocr_done:
        problems.append("the letter has no text: there is nothing to check")
    if pages.count > limits.max_pdf_pages:
        problems.append(
            f"the letter has {pages.count:,} pages, more than {limits.max_pdf_pages:,}: "
            f"only the first {limits.max_pdf_pages:,} were checked"
        )
    text, clipped = clip_text(text, None, "letter", limits)
    if clipped:
        problems.append(clipped)
    if addressee is None and not unread:
        problems.append(
            "no address block: the addressee could not be read (nothing address-like in the "
            f"envelope window at {window} mm, and no block on the first page ends in a UK "
            "postcode)"
        )
    return Letter(addressee, found_in, text, pages.count, tuple(problems), tuple(ocr_done))


def _pictures_problem(unread: list[int], count: int, have_ocr: bool) -> str:
    why = "OCR found no text" if have_ocr else "OCR (tesseract) is not installed"
    if len(unread) == count:
        return f"the letter has no text layer (a scanned image?) and {why}: it cannot be checked"
    shown = ", ".join(str(n) for n in unread[:10])
    return f"page {shown} of the letter has no text layer (a scanned image?) and {why}"


def _ocr(
    data: bytes,
    pages: _Pages,
    window: AddressWindow,
    *,
    found: tuple[PostalAddressee | None, str],
    done: list[int],
) -> tuple[PostalAddressee | None, str]:
    """Read picture-only pages with tesseract; the addressee too when page 1 is a picture."""
    addressee, found_in = found
    with tempfile.TemporaryDirectory(prefix="gatekeeper-letter-") as folder:
        pdf = Path(folder) / "letter.pdf"
        pdf.write_bytes(data)
        for number in pages.pictures:
            text = ocr_page(pdf, number)
            if text and len(text.strip()) >= 10:
                pages.texts[number - 1] = text
                done.append(number)
        if addressee is None and 1 in done:
            region = (
                window.left_mm * POINTS_PER_MM,
                window.top_mm * POINTS_PER_MM,
                window.width_mm * POINTS_PER_MM,
                window.height_mm * POINTS_PER_MM,
            )
            shown = ocr_page(pdf, 1, region)
            lines = [line for line in (shown or "").splitlines() if line.strip()]
            addressee = parse_block(lines)
            found_in = "ocr window"
            if addressee is None:
                addressee, found_in = find_block_in_text(pages.texts[0]), "ocr"
            if addressee is not None:
                block = (addressee.name, *addressee.lines)
                pages.texts[0] = without_lines(pages.texts[0], [*lines, *block])
    return addressee, found_in if addressee is not None else ""


def item_from_letter(
    data: bytes,
    *,
    sender: str | None,
    window: AddressWindow = DL_WINDOW,
    title: str = "",
    original_path: str | None = None,
    limits: MailLimits = DEFAULT_LIMITS,
    ocr: bool | None = None,
) -> Item:
    """The `Item` for a letter; never raises (what cannot be read is a problem on it)."""
    original = OriginalRef.of(data, original_path)
    try:
        letter = read_letter(data, window, limits, ocr)
    except Exception as error:  # the last guard of fail-closed: hold what could not be read
        problem = f"the letter could not be read (an error in reading it: {type(error).__name__})"
        return Item(Channel.POST, sender, (), original=original, problems=(problem,))
    return letter_item(letter, sender=sender, title=title, original=original)


def letter_item(
    letter: Letter, *, sender: str | None, title: str = "", original: OriginalRef | None = None
) -> Item:
    recipients: tuple[Recipient, ...] = ()
    if letter.addressee is not None:
        recipients = (
            Recipient(
                RecipientKind.POSTAL, display_name=letter.addressee.name, postal=letter.addressee
            ),
        )
    extra = {"pages": str(letter.pages), "address_found_in": letter.found_in}
    if title:
        extra["title"] = title
    if letter.ocr_pages:
        extra["ocr_pages"] = ",".join(map(str, letter.ocr_pages))
    return Item(
        channel=Channel.POST,
        sender=sender,
        recipients=recipients,
        body=(Segment(letter.text),) if letter.text else (),
        original=original,
        problems=letter.problems,
        extra=extra,
    )
