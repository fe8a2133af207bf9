"""Attachments give their text, or one sentence on why they cannot be read; HTML reads as text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatekeeper.analysis.extract import extract_attachment, extract_pdf_text
from gatekeeper.analysis.html_text import html_to_segments, html_to_text
from gatekeeper.item import Segment
from gatekeeper.mail import MailLimits
from tests import mailfiles as mf

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OCTETS = "application/octet-stream"


# PDF


def test_pdf_text_of_every_page_in_order() -> None:
    text, problem = extract_pdf_text(mf.text_pdf("Dear Mrs Jones,", "Yours, Jane Smith"))
    assert (text.split(), problem) == (["Dear", "Mrs", "Jones,", "Yours,", "Jane", "Smith"], None)


def test_a_password_protected_pdf_cannot_be_checked() -> None:
    attachment = extract_attachment("a.pdf", PDF, mf.encrypted_pdf("Assessment of Lily"))
    assert (attachment.text, attachment.problem) == (
        "",
        "encrypted PDF: its content cannot be checked",
    )


def test_a_pdf_locked_only_against_editing_is_read() -> None:
    assert extract_pdf_text(mf.owner_locked_pdf("Contact plan")) == ("Contact plan", None)


def test_a_truncated_pdf_is_corrupt() -> None:
    attachment = extract_attachment("a.pdf", PDF, mf.truncated_pdf())
    assert attachment.problem is not None
    assert attachment.problem.startswith("corrupt PDF: ")


def test_a_scanned_pdf_has_no_text_layer() -> None:
    assert extract_pdf_text(mf.scanned_pdf(pages=2)) == (
        "",
        "PDF has no text layer (a scanned image?): its content cannot be checked",
    )


def test_a_scanned_page_in_a_typed_pdf_is_a_problem_and_the_typed_text_is_kept() -> None:
    text, problem = extract_pdf_text(mf.text_and_scanned_pdf("Dear Mark"))
    assert text == "Dear Mark"
    assert problem == (
        "PDF has pages without a text layer (scanned images?): page 2 cannot be checked"
    )


def test_pages_beyond_the_page_limit_are_not_read() -> None:
    pdf = mf.text_pdf("one", "two", "three")
    text, problem = extract_pdf_text(pdf, MailLimits(max_pdf_pages=2))
    assert text.split() == ["one", "two"]
    assert problem == "PDF has 3 pages, more than 2: only the first 2 were checked"


@pytest.mark.parametrize("data", [b"%PDF-1.7\n" + b"\x00" * 64, b"%PDF-", b"%PDF-1.4\n1 0 obj <<"])
def test_hostile_scraps_of_pdf_are_corrupt(data: bytes) -> None:
    text, problem = extract_pdf_text(data)
    assert text == ""
    assert problem is not None
    assert problem.startswith("corrupt PDF")


# DOCX


def test_docx_paragraphs_table_cells_header_and_footer() -> None:
    data = mf.word_file(
        ["Care plan for Lily Smith", "Reviewed in March."],
        table=[["Name", "Address"], ["Anna Jones", "12 High Street, Leeds LS1 4AB"]],
        header="OFFICIAL-SENSITIVE",
        footer="Page footer: case EX-2025-0042",
    )
    attachment = extract_attachment("plan.docx", DOCX, data)
    assert attachment.problem is None
    assert attachment.text.split("\n") == [
        "Care plan for Lily Smith",
        "Reviewed in March.",
        "Name",
        "Address",
        "Anna Jones",
        "12 High Street, Leeds LS1 4AB",
        "OFFICIAL-SENSITIVE",
        "Page footer: case EX-2025-0042",
    ]


def test_a_damaged_docx_is_corrupt() -> None:
    attachment = extract_attachment("plan.docx", DOCX, mf.corrupt_word_file())
    assert attachment.problem == "corrupt DOCX: its contents could not be read"
    truncated = mf.word_file(["Care plan"])[:900]
    assert extract_attachment("plan.docx", DOCX, truncated).problem == (
        "corrupt DOCX: it is not a readable Word file"
    )


def test_a_docx_unpacking_beyond_the_limit_is_not_opened() -> None:
    data = mf.word_file_with_filler(2 * 1024 * 1024)
    attachment = extract_attachment("plan.docx", DOCX, data, MailLimits(max_unpacked_bytes=1024**2))
    assert attachment.problem == (
        "DOCX unpacks to more than 1 MB (a zip bomb?): its content cannot be checked"
    )
    assert attachment.size == len(data) < 100_000


def test_a_docx_compressed_a_thousandfold_is_a_zip_bomb() -> None:
    attachment = extract_attachment("plan.docx", DOCX, mf.word_file_with_filler(20 * 1024 * 1024))
    assert attachment.problem == (
        "DOCX is compressed suspiciously tightly (a zip bomb?): its content cannot be checked"
    )


# What a file is


def test_the_real_type_is_read_from_the_bytes_not_the_name() -> None:
    attachment = extract_attachment("photo.jpg", "image/jpeg", mf.text_pdf("Court order"))
    assert (attachment.text, attachment.problem) == ("Court order", None)
    word = extract_attachment("report.pdf", PDF, mf.word_file(["Disguised Word file"]))
    assert word.text == "Disguised Word file"


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("x.png", mf.png_image(), "PNG image attachment: its content cannot be read automatically"),
        ("x", mf.jpeg_image(), "JPEG image attachment: its content cannot be read automatically"),
        (
            "notes.doc",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),  # an OLE2 compound file's header
            "Word 97-2003 document attachment: its content cannot be read automatically",
        ),
        (
            "files.zip",
            mf.zip_archive({"a.txt": b"hello"}),
            "ZIP archive attachment: its content cannot be read automatically",
        ),
        (
            "book.xlsx",
            mf.zip_archive({"xl/workbook.xml": b"<workbook/>"}),
            "Excel workbook (XLSX) attachment: its content cannot be read automatically",
        ),
        (
            "blob.bin",
            b"\x01\x02\x03 unknown",
            "application/octet-stream attachment: its content cannot be read automatically",
        ),
    ],
)
def test_what_cannot_be_read_automatically_says_so(name: str, data: bytes, problem: str) -> None:
    attachment = extract_attachment(name, OCTETS, data)
    assert (attachment.text, attachment.problem) == ("", problem)


def test_text_attachments_are_decoded_by_their_charset() -> None:
    attachment = extract_attachment(
        "a.txt", "text/plain; charset=iso-8859-1", "Zoë Café".encode("latin-1")
    )
    assert (attachment.content_type, attachment.text, attachment.problem) == (
        "text/plain",
        "Zoë Café",
        None,
    )


@pytest.mark.parametrize(
    ("name", "content_type", "data", "text"),
    [
        (
            "a.csv",
            "text/csv",
            b"name,postcode\r\nAnna,LS1 4AB\r\n",
            "name,postcode\nAnna,LS1 4AB\n",
        ),
        ("a.json", "application/json", b'{"name": "Anna"}', '{"name": "Anna"}'),
        ("a.xml", "text/xml", b"<p>Anna</p>", "<p>Anna</p>"),
        ("notes.txt", OCTETS, b"plain notes", "plain notes"),
        (
            "invite.ics",
            "text/calendar",
            b"BEGIN:VEVENT\r\nDESCRIPTION:Meeting with Anna Jo\r\n nes about Lily\r\nEND:VEVENT",
            "BEGIN:VEVENT\nDESCRIPTION:Meeting with Anna Jones about Lily\nEND:VEVENT",
        ),
        ("page.html", "text/html", b"<p>Anna&nbsp;Jones</p><script>x()</script>", "Anna Jones"),
    ],
)
def test_text_formats_give_their_text(name: str, content_type: str, data: bytes, text: str) -> None:
    attachment = extract_attachment(name, content_type, data)
    assert (attachment.text, attachment.problem) == (text, None)


def test_an_attached_eml_file_is_a_forwarded_message() -> None:
    inner = mf.attach(mf.email_message("See report."), "r.pdf", mf.text_pdf("Report"), PDF)
    attachment = extract_attachment("old.eml", OCTETS, mf.as_bytes(inner))
    assert attachment.content_type == "message/rfc822"
    assert attachment.text.endswith("See report.")
    assert [(a.name, a.text) for a in attachment.inner] == [("r.pdf", "Report")]


def test_an_eml_beyond_the_depth_limit_is_not_read() -> None:
    attachment = extract_attachment(
        "old.eml",
        "message/rfc822",
        mf.as_bytes(mf.email_message()),
        MailLimits(max_depth=3),
        depth=3,
    )
    assert attachment.problem == (
        "forwarded message nested more than 3 levels deep: its content was not checked"
    )


def test_an_empty_attachment_has_no_text_and_no_problem() -> None:
    attachment = extract_attachment("empty.pdf", PDF, b"")
    assert (attachment.size, attachment.text, attachment.problem) == (0, "", None)


def test_text_beyond_the_limit_is_cut_with_a_problem() -> None:
    attachment = extract_attachment(
        "a.txt", "text/plain", b"x" * 100, MailLimits(max_text_chars=10)
    )
    assert attachment.text == "x" * 10
    assert attachment.problem == (
        "text/plain text is longer than 10 characters: the rest was not checked"
    )


def test_an_attachment_over_the_size_limit_is_not_read() -> None:
    attachment = extract_attachment(
        "a.pdf", PDF, mf.text_pdf("x"), MailLimits(max_attachment_bytes=100)
    )
    assert attachment.problem == "attachment larger than 1 kB: its content was not checked"


# HTML


def test_html_blocks_lists_links_entities_and_whitespace() -> None:
    html = """<html><head><title>Title</title><style>p{}</style></head><body>
      <h1>Review</h1><p>Dear   Mrs&nbsp;Jones,<br>the meeting is
      on <a href="https://example.org/x">Tuesday</a> &amp; Thursday.</p>
      <ul><li>Lily</li><li>Tom</li></ul><table><tr><td>Name</td><td>Anna</td></tr></table>
      <template><p>never shown</p></template><script>alert(1)</script></body></html>"""
    assert html_to_text(html) == (
        "Review\n\nDear Mrs Jones,\nthe meeting is on Tuesday & Thursday.\n\n- Lily\n- Tom\nName Anna"
    )


def test_html_quote_containers_are_marked_quoted() -> None:
    segments = html_to_segments(
        "<div>New text</div><blockquote>Old text</blockquote><div>More new</div>"
    )
    assert segments == (
        Segment("New text"),
        Segment("Old text", quoted=True),
        Segment("More new"),
    )


def test_text_in_an_unclosed_head_is_still_read() -> None:
    assert html_to_text("<head><title>t</title><p>Visible text") == "Visible text"


@pytest.mark.parametrize(
    "markup", ["<a" * 20_000, "<!" * 20_000, "</" * 20_000, "<![CDATA[" * 5_000, "<" * 20_000, ""]
)
def test_hostile_markup_is_read_quickly_without_raising(markup: str) -> None:
    assert isinstance(html_to_text(markup), str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/!-[]?=\"' &#;abpdivquote\n")), max_size=300))
def test_html_to_text_never_raises(markup: str) -> None:
    assert isinstance(html_to_text(markup), str)
