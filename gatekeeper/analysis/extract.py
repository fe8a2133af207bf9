"""The text of an attachment, or one sentence saying why it cannot be read.

What a file really is comes from its first bytes (a "report.pdf" that is a
Word file is read as Word), then its declared type, then its name. PDFs are
read with PDFium, Word files with python-docx, text and HTML directly. What
cannot be read (images, old Office files, archives, encrypted or corrupt
files) gets a problem, and the gate holds the item for a person. Nothing
here raises: a failure is a problem on the attachment.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import time
import zipfile
from enum import StrEnum
from pathlib import PurePath
from typing import Any

import docx  # noqa: F401  (registers python-docx's part classes used by OpcPackage)
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
from docx.opc.package import OpcPackage
from docx.opc.part import XmlPart
from docx.oxml.parser import parse_xml

from gatekeeper.analysis.html_text import html_to_text
from gatekeeper.analysis.limits import DEFAULT_LIMITS, MailLimits, describe_bytes
from gatekeeper.analysis.mime import decode_text, largely_unreadable, normalise_newlines
from gatekeeper.analysis.pdf_bombs import ENCRYPTED_PDF, pdf_unpack_problem
from gatekeeper.item import Attachment


class Kind(StrEnum):
    PDF = "PDF"
    DOCX = "DOCX"
    TEXT = "text"
    HTML = "HTML"
    EMAIL = "forwarded message"
    UNREADABLE = "unreadable"


NO_TEXT_LAYER = "PDF has no text layer (a scanned image?): its content cannot be checked"
ENCRYPTED_OFFICE = "encrypted Office document: its content cannot be checked"

PDF_MAGIC = b"%PDF-"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted Word/Excel file is an OLE2 file with this stream (name in UTF-16).
OLE2_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
BINARY_MAGICS = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"{\\rtf", "RTF document"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
)
OLE2_LABELS = {
    ".doc": "Word 97-2003 document",
    ".dot": "Word 97-2003 template",
    ".xls": "Excel 97-2003 workbook",
    ".ppt": "PowerPoint 97-2003 presentation",
    ".msg": "Outlook message file",
}
ZIP_LABELS = (
    ("xl/workbook.xml", "Excel workbook (XLSX)"),
    ("ppt/presentation.xml", "PowerPoint presentation (PPTX)"),
    ("content.xml", "OpenDocument file"),
)
DOCX_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
        "application/vnd.ms-word.document.macroenabled.12",
    }
)
TEXT_TYPES = frozenset(
    {"application/json", "application/xml", "application/ics", "application/csv"}
    | {"application/x-ndjson", "application/yaml", "application/x-yaml"}
)
EMAIL_TYPES = frozenset({"message/rfc822", "message/global"})
KIND_BY_EXTENSION = {
    ".pdf": Kind.PDF,
    ".docx": Kind.DOCX,
    ".docm": Kind.DOCX,
    ".dotx": Kind.DOCX,
    ".eml": Kind.EMAIL,
    ".htm": Kind.HTML,
    ".html": Kind.HTML,
    **dict.fromkeys(
        (".txt", ".csv", ".tsv", ".ics", ".vcf", ".xml", ".json", ".log", ".md"), Kind.TEXT
    ),
}
CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
# iCalendar folds long lines: a line break then a space or tab continues the line.
ICS_FOLD = re.compile(r"\n[ \t]")

# A zip archive with more files than this, or one member expanding beyond this
# ratio (and size), is treated as a zip bomb.
MAX_ZIP_MEMBERS = 10_000
# zipfile reads an archive's whole file list (an object per entry) before anything else:
# a list longer than this many files of ordinary names is not read at all.
MAX_ZIP_DIRECTORY_BYTES = MAX_ZIP_MEMBERS * 400
ZIP_TOO_MANY_FILES = (
    f"archive holds more than {MAX_ZIP_MEMBERS:,} files (a zip bomb?): "
    "its content cannot be checked"
)
ZIP_END = b"PK\x05\x06"  # end of central directory record
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_END = b"PK\x06\x06"
BOMB_RATIO = 100
BOMB_MIN_BYTES = 10 * 1024 * 1024

WORD_PARTS = (  # the parts of a Word file that hold text, in reading order
    "wordprocessingml.document.main+xml",
    "ms-word.document.macroenabled.main+xml",
    "wordprocessingml.template.main+xml",
    "ms-word.template.macroenabledtemplate.main+xml",
    "wordprocessingml.header+xml",
    "wordprocessingml.footer+xml",
    "wordprocessingml.footnotes+xml",
    "wordprocessingml.endnotes+xml",
    "wordprocessingml.comments+xml",
)
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# Word stores a text box twice (new and fallback form); read it once.
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
W_PARAGRAPH = f"{W}p"
WORD_TEXT = frozenset({f"{W}t", f"{W}delText"})  # deleted (tracked) text still travels
WORD_BREAKS = {f"{W}tab": "\t", f"{W}br": "\n", f"{W}cr": "\n", f"{W}noBreakHyphen": "-"}

# PDFium is not thread-safe; one document at a time.
PDFIUM_LOCK = threading.Lock()


def extract_attachment(
    name: str,
    content_type: str,
    data: bytes,
    limits: MailLimits = DEFAULT_LIMITS,
    depth: int = 0,
) -> Attachment:
    """The attachment with its text, or with the reason its text could not be read.

    `content_type` is as declared (parameters such as charset are used, then dropped);
    a forwarded message, whatever it was declared as, is "message/rfc822". `depth` is
    how deeply the attachment is nested, which bounds forwarded messages inside it.
    """
    media_type = media_type_of(content_type)
    if not data:
        return Attachment(name, media_type, 0)
    if len(data) > limits.max_attachment_bytes:
        limit = describe_bytes(limits.max_attachment_bytes)
        too_large = f"attachment larger than {limit}: its content was not checked"
        return Attachment(name, media_type, len(data), problem=too_large)
    label = media_type
    try:
        kind, label = detect_kind(name, media_type, data)
        if kind is Kind.EMAIL:
            from gatekeeper.mail import forwarded_message  # mail.py imports this module

            return forwarded_message(name, data, limits, depth)
        text, problem = _read(kind, label, content_type, data, limits)
    except Exception:  # a reader's unexpected failure is a problem, never a crash
        text, problem = "", f"{label} attachment could not be read: its content cannot be checked"
    text, problem = clip_text(text, problem, label, limits)
    return Attachment(name, media_type, len(data), text=text, problem=problem)


def _read(
    kind: Kind, label: str, content_type: str, data: bytes, limits: MailLimits
) -> tuple[str, str | None]:
    if kind is Kind.PDF:
        return extract_pdf_text(data, limits)
    if kind is Kind.DOCX:
        return extract_docx_text(data, limits)
    if kind is Kind.UNREADABLE:
        return "", _unreadable_problem(label)
    text = normalise_newlines(decode_text(data, charset_of(content_type)))
    if kind is Kind.HTML:
        text = html_to_text(text)
    elif content_type.lower().startswith("text/calendar") or label == "text/calendar":
        text = ICS_FOLD.sub("", text)  # after newlines are normalised: "\n" then a space
    if largely_unreadable(text):
        return text, f"{label} attachment in an unreadable character encoding: it cannot be checked"
    return text, None


def _unreadable_problem(label: str) -> str:
    if label in (ENCRYPTED_OFFICE, ZIP_TOO_MANY_FILES):
        return label
    return f"{label} attachment: its content cannot be read automatically"


def clip_text(
    text: str, problem: str | None, label: str, limits: MailLimits
) -> tuple[str, str | None]:
    """Text cut at the limit, with a problem saying so."""
    if len(text) <= limits.max_text_chars:
        return text, problem
    clipped = (
        f"{label} text is longer than {limits.max_text_chars:,} characters: "
        "the rest was not checked"
    )
    return text[: limits.max_text_chars], f"{problem}; {clipped}" if problem else clipped


# What a file is


def media_type_of(content_type: str) -> str:
    """ "text/plain; charset=utf-8" -> "text/plain"."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type or "application/octet-stream"


def charset_of(content_type: str) -> str | None:
    match = CHARSET_PARAM.search(content_type)
    return match.group(1) if match else None


def detect_kind(name: str, media_type: str, data: bytes) -> tuple[Kind, str]:
    """What the file is, by its first bytes, then its declared type, then its name's extension.

    Returns the kind and a label staff understand ("PNG image", "Excel workbook (XLSX)").
    """
    if PDF_MAGIC in data[:1024]:
        return Kind.PDF, "PDF"
    extension = PurePath(name.lower()).suffix
    if data.startswith(ZIP_MAGICS):
        return _zip_kind(data, media_type, extension)
    if data.startswith(OLE2_MAGIC):
        if OLE2_ENCRYPTED_STREAM in data[:65536] or OLE2_ENCRYPTED_STREAM in data[-65536:]:
            return Kind.UNREADABLE, ENCRYPTED_OFFICE
        return Kind.UNREADABLE, OLE2_LABELS.get(extension, "old-format Microsoft Office file")
    for magic, label in BINARY_MAGICS:
        if data.startswith(magic):
            return Kind.UNREADABLE, label
    return _declared_kind(media_type, extension)


def _declared_kind(media_type: str, extension: str) -> tuple[Kind, str]:
    maintype = media_type.partition("/")[0]
    if media_type in ("text/html", "application/xhtml+xml"):
        return Kind.HTML, "HTML"
    if maintype == "text" or media_type in TEXT_TYPES or media_type.endswith(("+xml", "+json")):
        return Kind.TEXT, media_type
    if media_type in EMAIL_TYPES:
        return Kind.EMAIL, "forwarded message"
    if media_type == "application/pdf":
        return Kind.PDF, "PDF"
    if media_type in DOCX_TYPES:
        return Kind.DOCX, "DOCX"
    if maintype == "image":
        return Kind.UNREADABLE, f"{media_type.partition('/')[2].upper()} image"
    kind = KIND_BY_EXTENSION.get(extension)
    if kind is not None:
        return kind, kind.value if kind is not Kind.TEXT else f"{extension[1:].upper()} file"
    return Kind.UNREADABLE, media_type


def _zip_kind(data: bytes, media_type: str, extension: str) -> tuple[Kind, str]:
    if _zip_directory_too_large(data):
        return Kind.UNREADABLE, ZIP_TOO_MANY_FILES
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except Exception:  # damaged: trust the declared type, whose reader reports it corrupt
        declared_docx = media_type in DOCX_TYPES or KIND_BY_EXTENSION.get(extension) is Kind.DOCX
        return (Kind.DOCX, "DOCX") if declared_docx else (Kind.UNREADABLE, "ZIP archive")
    if "word/document.xml" in names:
        return Kind.DOCX, "DOCX"
    for member, label in ZIP_LABELS:
        if member in names:
            return Kind.UNREADABLE, label
    return Kind.UNREADABLE, "ZIP archive"


# PDF


def extract_pdf_text(data: bytes, limits: MailLimits = DEFAULT_LIMITS) -> tuple[str, str | None]:
    """The text of every page (up to the page limit), and a problem if any content is unreadable.

    Encrypted, corrupt and scanned (image-only) PDFs give a problem, and so does one that
    would unpack to more than the limit (it is never opened); never raises.
    """
    bomb = pdf_unpack_problem(data, limits)
    if bomb:
        return "", bomb
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            if error.err_code in (pdfium_raw.FPDF_ERR_PASSWORD, pdfium_raw.FPDF_ERR_SECURITY):
                return "", ENCRYPTED_PDF
            return "", "corrupt PDF: it could not be opened"
        except Exception:  # PDFium rejects what it cannot open; anything else is corrupt too
            return "", "corrupt PDF: it could not be opened"
        try:
            return _pdf_pages_text(document, limits)
        except Exception:
            return "", "corrupt PDF: its pages could not be read"
        finally:
            document.close()


def _pdf_pages_text(document: pdfium.PdfDocument, limits: MailLimits) -> tuple[str, str | None]:
    page_count = len(document)
    if page_count == 0:
        return "", "corrupt PDF: it has no pages"
    texts: list[str] = []
    scanned: list[int] = []
    chars = 0
    to_read = min(page_count, limits.max_pdf_pages)
    # Pages may share one content stream or form, each reading unpacking it again: the
    # unpacked-size check before opening cannot see that, the clock can.
    deadline = time.monotonic() + limits.max_pdf_seconds
    slow = False
    for index in range(to_read):
        text, has_images = _pdf_page_text(document, index)
        if not text.strip() and has_images:
            scanned.append(index + 1)
        texts.append(text)
        chars += len(text)
        if chars > limits.max_text_chars:
            break  # clip_text notes the problem
        if index + 1 < to_read and time.monotonic() > deadline:
            slow = True
            break
    text = "\n".join(texts).strip()
    problems = []
    if slow:
        problems.append(
            f"PDF took more than {limits.max_pdf_seconds:g} s to read (a PDF bomb?): only the "
            f"first {len(texts):,} of its {page_count:,} pages were checked"
        )
    if not text:
        return "", "; ".join([*problems, NO_TEXT_LAYER])
    if page_count > limits.max_pdf_pages:
        problems.append(
            f"PDF has {page_count:,} pages, more than {limits.max_pdf_pages:,}: "
            f"only the first {limits.max_pdf_pages:,} were checked"
        )
    if scanned:
        pages = ", ".join(str(number) for number in scanned[:10])
        problems.append(
            f"PDF has pages without a text layer (scanned images?): page {pages} cannot be checked"
        )
    return text, "; ".join(problems) or None


def _pdf_page_text(document: pdfium.PdfDocument, index: int) -> tuple[str, bool]:
    """The page's text, and (only where it has none) whether it shows images."""
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range().replace("\r\n", "\n")
        finally:
            textpage.close()
        if text.strip():
            return text, False
        images = page.get_objects(filter=(pdfium_raw.FPDF_PAGEOBJ_IMAGE,), max_depth=4)
        return text, next(images, None) is not None
    finally:
        page.close()


# DOCX


def extract_docx_text(data: bytes, limits: MailLimits = DEFAULT_LIMITS) -> tuple[str, str | None]:
    """Paragraphs, tables, text boxes, headers, footers, notes and comments of a Word file."""
    if _zip_directory_too_large(data):
        return "", ZIP_TOO_MANY_FILES
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception:
        return "", "corrupt DOCX: it is not a readable Word file"
    problem = _zip_bomb(members, limits, "DOCX")
    if problem:
        return "", problem
    try:
        package = OpcPackage.open(io.BytesIO(data))
        parts = [part for part in package.iter_parts() if _word_part_rank(part) is not None]
        parts.sort(key=lambda part: (_word_part_rank(part), str(part.partname)))
        texts = [_word_text(_part_element(part)) for part in parts]
    except Exception:
        return "", "corrupt DOCX: its contents could not be read"
    if not parts:
        return "", "corrupt DOCX: it has no document text"
    text = "\n".join(text for text in texts if text).strip()
    return text, _docx_unchecked_content(text, members)


def _docx_unchecked_content(text: str, members: list[zipfile.ZipInfo]) -> str | None:
    names = [member.filename for member in members]
    if any(name.startswith("word/embeddings/") for name in names):
        return "DOCX has files embedded in it (a spreadsheet or document?): they cannot be checked"
    if not text and any(name.startswith("word/media/") for name in names):
        return "DOCX has no text, only images: its content cannot be checked"
    return None


def _zip_bomb(members: list[zipfile.ZipInfo], limits: MailLimits, label: str) -> str | None:
    """Why the archive must not be unpacked (declared sizes bound what zipfile unpacks)."""
    unchecked = "its content cannot be checked"
    if len(members) > MAX_ZIP_MEMBERS:
        return f"{label} holds more than {MAX_ZIP_MEMBERS:,} files (a zip bomb?): {unchecked}"
    if any(member.flag_bits & 0x1 for member in members):
        return f"encrypted {label}: {unchecked}"
    if sum(member.file_size for member in members) > limits.max_unpacked_bytes:
        limit = describe_bytes(limits.max_unpacked_bytes)
        return f"{label} unpacks to more than {limit} (a zip bomb?): {unchecked}"
    if any(_bomb_ratio(member) for member in members):
        return f"{label} is compressed suspiciously tightly (a zip bomb?): {unchecked}"
    return None


def _zip_directory_too_large(data: bytes) -> bool:
    """Whether the archive's end record declares more files, or a longer file list, than
    `MAX_ZIP_MEMBERS` (zip64 included): read before zipfile builds an object per entry."""
    tail_start = max(0, len(data) - (65535 + 22))  # the record, then a comment of 64 kB at most
    end = data.rfind(ZIP_END, tail_start)
    if end < 0 or len(data) - end < 22:
        return False  # no end record: zipfile refuses the archive itself
    files: int
    size: int
    files, size = struct.unpack_from("<HI", data, end + 10)
    locator = end - 20
    if (files == 0xFFFF or size == 0xFFFFFFFF) and data[locator : locator + 4] == ZIP64_LOCATOR:
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if data[record : record + 4] != ZIP64_END or record + 56 > len(data):
            return True  # a zip64 archive whose own record cannot be found: not read
        files, size = struct.unpack_from("<QQ", data, record + 32)
    return files > MAX_ZIP_MEMBERS or size > MAX_ZIP_DIRECTORY_BYTES


def _bomb_ratio(member: zipfile.ZipInfo) -> bool:
    return member.file_size > BOMB_MIN_BYTES and (
        member.file_size > BOMB_RATIO * max(member.compress_size, 1)
    )


def _word_part_rank(part: object) -> int | None:
    content_type = str(getattr(part, "content_type", "")).lower()
    for rank, suffix in enumerate(WORD_PARTS):
        if content_type.endswith(suffix):
            return rank
    return None


def _part_element(part: object) -> Any:
    if isinstance(part, XmlPart):
        return part.element
    return parse_xml(getattr(part, "blob", b""))


def _word_text(root: Any) -> str:
    """A WordprocessingML part's text, one line per paragraph (table cells included)."""
    lines: list[str] = []
    pieces: list[str] = []

    def end_line() -> None:
        line = "".join(pieces).strip()
        pieces.clear()
        if line:
            lines.append(line)

    pending: list[tuple[Any, bool]] = [(root, False)]  # (element, leaving it); no recursion
    while pending:
        element, leaving = pending.pop()
        tag = element.tag
        if tag == W_PARAGRAPH:
            end_line()
        if leaving or tag == MC_FALLBACK:
            continue
        if tag in WORD_TEXT:
            pieces.append(element.text or "")
        elif tag in WORD_BREAKS:
            pieces.append(WORD_BREAKS[tag])
        if tag == W_PARAGRAPH:
            pending.append((element, True))
        pending.extend((child, False) for child in reversed(element))
    end_line()
    return "\n".join(lines)
