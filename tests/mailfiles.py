"""Builders for real test files: emails as mail programs write them, PDFs, Word files.

Everything is made in code with the libraries that make such files in the
world (reportlab, python-docx, the standard library's email package,
cryptography's S/MIME), so each test reads a real file, not a mock.
"""

from __future__ import annotations

import datetime
import io
import random
import zipfile
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from functools import cache

import docx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

SENDER = "Jane Smith <jane.smith@council.example.org>"
DATE = "Mon, 03 Mar 2025 10:02:00 +0000"

# PDF


def text_pdf(*pages: str, encrypt: StandardEncryption | None = None) -> bytes:
    """A PDF with one page per argument, each line of it drawn as text."""
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pagesize=A4, encrypt=encrypt)
    for page in pages:
        for number, line in enumerate(page.split("\n")):
            document.drawString(72, 770 - 16 * number, line)
        document.showPage()
    document.save()
    return buffer.getvalue()


def encrypted_pdf(text: str, user_password: str = "letmein") -> bytes:
    """A PDF that opens only with a password."""
    return text_pdf(text, encrypt=StandardEncryption(user_password, ownerPassword="owner"))


def owner_locked_pdf(text: str) -> bytes:
    """A PDF encrypted only against editing: anyone can open and read it."""
    return text_pdf(text, encrypt=StandardEncryption("", ownerPassword="owner", canModify=0))


def truncated_pdf() -> bytes:
    """The first half of a real PDF, as a broken download or a cut-off upload leaves it."""
    whole = text_pdf("Assessment of the family", "Page two")
    return whole[: len(whole) // 2]


def scanned_pdf(pages: int = 1) -> bytes:
    """A PDF whose pages are only pictures (as a scanner makes them): no text layer."""
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pagesize=A4)
    for _ in range(pages):
        document.drawImage(ImageReader(_scan_image()), 36, 36, width=523, height=770)
        document.showPage()
    document.save()
    return buffer.getvalue()


def text_and_scanned_pdf(text: str) -> bytes:
    """A typed letter (page 1) with a scanned enclosure (page 2)."""
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pagesize=A4)
    document.drawString(72, 770, text)
    document.showPage()
    document.drawImage(ImageReader(_scan_image()), 36, 36, width=523, height=770)
    document.showPage()
    document.save()
    return buffer.getvalue()


def _scan_image() -> Image.Image:
    image = Image.new("L", (200, 280), 255)
    for y in range(20, 260, 12):  # grey "lines of text" as a scan shows them
        for x in range(20, 180):
            image.putpixel((x, y), 60)
    return image


def png_image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def screenshot_png() -> bytes:
    """A picture the size of a pasted screenshot (noise, so PNG cannot shrink it)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (300, 300), random.Random(3).randbytes(300 * 300 * 3)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def jpeg_image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 30, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


# Word


def word_file(
    paragraphs: Sequence[str] = (),
    table: Sequence[Sequence[str]] = (),
    header: str | None = None,
    footer: str | None = None,
) -> bytes:
    """A .docx with paragraphs, then a table, and a page header and footer."""
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    section = document.sections[0]
    if header is not None:
        section.header.paragraphs[0].text = header
    if footer is not None:
        section.footer.paragraphs[0].text = footer
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def corrupt_word_file() -> bytes:
    """A .docx whose document part is not XML (a damaged save)."""
    return _rezipped(word_file(["Hello"]), replace={"word/document.xml": b"<w:document><broken"})


def word_file_with_filler(filler_bytes: int) -> bytes:
    """A real .docx carrying a member of zeros that compresses about a thousandfold:
    the shape of a zip bomb."""
    return _rezipped(word_file(["Hello"]), add={"word/media/filler.bin": bytes(filler_bytes)})


def zip_archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _rezipped(
    original: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None
) -> bytes:
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        for name in archive.namelist():
            members[name] = (replace or {}).get(name, archive.read(name))
    return zip_archive({**members, **(add or {})})


# Email


def email_message(
    body: str = "Dear Mark,\n\nThe contact session is on Tuesday.\n\nJane",
    *,
    subject: str = "Contact arrangements",
    sender: str = SENDER,
    to: str = "Mark Smith <m.smith77@example.com>",
    cc: str | None = None,
    bcc: str | None = None,
    html: str | None = None,
    message_id: str = "<20250303100200.1@council.example.org>",
) -> EmailMessage:
    """A message as a mail program writes it: plain text, with an HTML alternative if given."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if bcc:
        message["Bcc"] = bcc
    message["Subject"] = subject
    message["Date"] = DATE
    message["Message-ID"] = message_id
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def attach(message: EmailMessage, name: str, data: bytes, content_type: str) -> EmailMessage:
    maintype, subtype = content_type.split("/")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


def as_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=SMTP)


def raw_email(headers: str, body: str) -> bytes:
    """A message written out by hand, for header forms the email package would not write."""
    return (headers.strip("\n") + "\n\n" + body).replace("\n", "\r\n").encode("utf-8")


def forwarded(inner: EmailMessage, note: str = "See below.") -> EmailMessage:
    """A message forwarding another as an attachment (message/rfc822), as Outlook does."""
    outer = email_message(note, subject=f"FW: {inner['Subject']}", to="team@council.example.org")
    outer.add_attachment(inner)
    return outer


def nested_forwards(levels: int) -> EmailMessage:
    """A message forwarding a message forwarding a message ... `levels` deep."""
    message = email_message("The original.", subject="Level 0")
    for level in range(1, levels + 1):
        outer = email_message(f"Forward {level}.", subject=f"Level {level}")
        outer.add_attachment(message)
        message = outer
    return message


def with_signature_logo(message: EmailMessage, logo: bytes) -> EmailMessage:
    """An HTML message showing a logo in its signature (multipart/related, cid: reference)."""
    html = message.get_body(("html",))
    assert html is not None
    html.set_content(
        "<p>Dear Mark,</p><p>See you on Tuesday.</p>"
        '<p>Jane Smith<br><img src="cid:logo123@council.example.org" alt="Council"></p>',
        subtype="html",
    )
    html.add_related(logo, maintype="image", subtype="png", cid="<logo123@council.example.org>")
    return message


GMAIL_REPLY_HTML = """\
<div dir="ltr">Yes, Tuesday at 10 is fine.<div><br></div><div>Jane</div></div><br>
<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 3 Mar 2025 at 09:15, Mark Smith
&lt;<a href="mailto:m.smith77@example.com">m.smith77@example.com</a>&gt; wrote:<br></div>
<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">Can we meet on Tuesday?
Lily's school report is attached.</blockquote></div>
"""

OUTLOOK_REPLY_HTML = """\
<html><head><style>p.MsoNormal {margin:0}</style></head><body>
<div>Thank you, I will pass this on.</div>
<div id="appendonsend"></div>
<hr style="display:inline-block;width:98%">
<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> Mark Smith
&lt;m.smith77@example.com&gt;<br><b>Sent:</b> Monday, March 3, 2025 9:15 AM<br>
<b>To:</b> Jane Smith<br><b>Subject:</b> Contact</font><div>&nbsp;</div></div>
<div>Lily has been unwell this week.</div>
</body></html>
"""


@cache
def _smime_identity() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "m.smith77@example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


_SMIME_HEADERS = f"From: {SENDER}\nTo: Mark Smith <m.smith77@example.com>\nSubject: Report\n"


def smime_encrypted_email(text: str) -> bytes:
    """A real S/MIME encrypted (enveloped-data) message, as Outlook sends with "Encrypt"."""
    certificate, _ = _smime_identity()
    envelope = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(f"Content-Type: text/plain\r\n\r\n{text}\r\n".encode())
        .add_recipient(certificate)
        .encrypt(serialization.Encoding.SMIME, [])
    )
    return _SMIME_HEADERS.replace("\n", "\r\n").encode() + envelope


def smime_signed_email(text: str) -> bytes:
    """A real S/MIME signed message (multipart/signed with a detached signature)."""
    certificate, key = _smime_identity()
    signed = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(f"Content-Type: text/plain\r\n\r\n{text}\r\n".encode())
        .add_signer(certificate, key, hashes.SHA256())
        .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    )
    return _SMIME_HEADERS.replace("\n", "\r\n").encode() + signed


def pgp_encrypted_email() -> bytes:
    """A PGP/MIME encrypted message (RFC 3156 structure)."""
    return raw_email(
        f"""
From: {SENDER}
To: m.smith77@example.com
Subject: Report
MIME-Version: 1.0
Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pgp"
""",
        """--pgp
Content-Type: application/pgp-encrypted

Version: 1

--pgp
Content-Type: application/octet-stream; name="encrypted.asc"

-----BEGIN PGP MESSAGE-----

hQEMA8Qv1b2sCPNlAQf/YGqN0Pq6kN8bcEwWm3N+Jx0H
=Yx1c
-----END PGP MESSAGE-----

--pgp--
""",
    )
