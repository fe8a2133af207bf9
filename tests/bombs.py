"""Builders for hostile files: PDF, zip and MIME bombs, small on the wire and huge inside.

PDFs are written object by object (reportlab would never write these), zips with
zipfile, messages with the email package; `bench/bombs.py` uses the same ones.
"""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter

from tests import mailfiles as mf

MB = 1024 * 1024
_JANE = "Jane Smith <jane.smith@example.net>"
PDF_BOMBS = ("flate", "double", "indirect", "escaped", "ascii85", "encrypted")


def raw_pdf(objects: Sequence[bytes]) -> bytes:
    """A PDF of these objects (numbered from 1, the first the catalog), with its xref table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    table = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        table,
    )
    return bytes(out)


def deflated_spaces(size: int) -> bytes:
    """`size` bytes of spaces as a zlib stream, about a thousandth of the size. Deflating a
    gigabyte takes seconds; a megabyte deflated after a full flush is the same bytes every
    time, so one is repeated, between the zlib header and the checksum of the whole."""
    whole, rest = divmod(size, MB)
    block = b" " * MB
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: header and checksum below
    repeated = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    last = packer.compress(block[:rest]) + packer.flush()
    checksum = 1
    for _ in range(whole):
        checksum = zlib.adler32(block, checksum)
    checksum = zlib.adler32(block[:rest], checksum)
    return b"\x78\xda" + repeated * whole + last + checksum.to_bytes(4, "big")


def _page_pdf(content: bytes, dictionary: bytes, extra: Sequence[bytes] = ()) -> bytes:
    """One page whose content stream is `content`, declared with `dictionary` entries."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
            b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(content), dictionary, content),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>",
            *extra,
        ]
    )


def pdf_bomb(unpacked: int, how: str = "flate") -> bytes:
    """A one-page PDF whose content stream unpacks to `unpacked` bytes, the Flate declared
    one way or another (`PDF_BOMBS`): as itself, twice over, through a reference to a
    filter array, with escaped names, behind ASCII85, or in an encrypted file that opens
    without a password."""
    once = deflated_spaces(unpacked)
    if how == "flate":
        return _page_pdf(once, b"/Filter /FlateDecode")
    if how == "double":
        return _page_pdf(zlib.compress(once, 9), b"/Filter [/FlateDecode /FlateDecode]")
    if how == "indirect":
        twice = zlib.compress(once, 9)
        return _page_pdf(twice, b"/Filter 5 0 R", [b"[/FlateDecode /FlateDecode]"])
    if how == "escaped":
        return _page_pdf(once, b"/F#69lter /Fl#61teDecode")
    if how == "ascii85":
        return _page_pdf(base64.a85encode(once) + b"~>", b"/Filter [/A85 /Fl]")
    if how == "encrypted":
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bomb(unpacked))))
        writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()
    raise ValueError(f"no PDF bomb {how!r}")


def shared_content_pdf(pages: int, unpacked: int) -> bytes:
    """`pages` pages all showing one content stream of `unpacked` bytes: each page read
    unpacks it again, though the file holds it once."""
    kids = b" ".join(b"%d 0 R" % (4 + n) for n in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>"
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
            _stream(deflated_spaces(unpacked), b"/Filter /FlateDecode"),
            *([page] * pages),
        ]
    )


def page_tree_pdf(levels: int, fan: int = 10) -> bytes:
    """A page with a line of text, shown `fan ** levels` times: each node of the page tree
    lists the node below `fan` times. A million pages in about a kilobyte."""
    text = b"BT /F1 12 Tf 72 700 Td (Dear Jane Smith) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages %d 0 R >>" % (4 + levels),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        _stream(text, b""),
        b"<< /Type /Page /MediaBox [0 0 612 792] /Contents 3 0 R"
        b" /Resources << /Font << /F1 2 0 R >> >> >>",
    ]
    child, count = 4, 1
    for level in range(levels):
        count *= fan
        kids = b" ".join([b"%d 0 R" % child] * fan)
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count))
        child = 5 + level
    return raw_pdf(objects)


def _stream(content: bytes, dictionary: bytes) -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(content), dictionary, content)


def zip_of_many_files(count: int, first: str = "word/document.xml") -> bytes:
    """An archive of `count` empty files after `first` (a Word document's main part)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(first, b"<w:document/>")
        for number in range(count):
            archive.writestr(zipfile.ZipInfo(f"f/{number:x}"), b"")
    return buffer.getvalue()


def zip_bomb(members: dict[str, bytes], zeros: str, unpacked: int) -> bytes:
    """An archive of `members` and one more, `zeros`, of `unpacked` zero bytes: written a
    megabyte at a time, so a gigabyte inside costs a megabyte to make."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        info = zipfile.ZipInfo(zeros)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=unpacked >= 2**31) as out:
            block = bytes(MB)
            for _ in range(unpacked // MB):
                out.write(block)
            out.write(bytes(unpacked % MB))
    return buffer.getvalue()


def docx_bomb(unpacked: int) -> bytes:
    """A real Word file, "Hello", carrying a part of `unpacked` zeros."""
    with zipfile.ZipFile(io.BytesIO(mf.word_file(["Hello"]))) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return zip_bomb(members, "word/media/filler.bin", unpacked)


def xlsx_bomb(unpacked: int) -> bytes:
    """An Excel workbook whose one sheet unpacks to `unpacked` bytes of zeros."""
    members = {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}
    return zip_bomb(members, "xl/worksheets/sheet1.xml", unpacked)


def nested_multiparts(depth: int, text: str = "The innermost part.") -> bytes:
    """A message of multipart/mixed parts each holding the next, `depth` deep."""
    head = (
        f"From: Alice Jones <a.jones@gatekeeper.example>\nTo: {_JANE}\nSubject: Nested\n"
        "MIME-Version: 1.0\n"
    )
    opening = "".join(
        f"Content-Type: multipart/mixed; boundary=b{n}\n\n--b{n}\n" for n in range(depth)
    )
    closing = "".join(f"\n--b{n}--\n" for n in reversed(range(depth)))
    body = f"Content-Type: text/plain\n\n{text}\n"
    return (head + opening + body + closing).replace("\n", "\r\n").encode()


def nested_forwards(depth: int) -> bytes:
    """A message forwarding a message forwarding ... `depth` deep, written out by hand: the
    email package's writer recurses too deep for a couple of hundred levels."""
    message = "Subject: Level 0\nContent-Type: text/plain\n\nThe original.\n"
    for level in range(1, depth + 1):
        message = (
            f"From: Alice Jones <a.jones@gatekeeper.example>\nTo: {_JANE}\n"
            f"Subject: Level {level}\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/mixed; boundary=f{level}\n\n"
            f"--f{level}\nContent-Type: text/plain\n\nForward {level}.\n"
            f"--f{level}\nContent-Type: message/rfc822\n\n{message}\n--f{level}--\n"
        )
    return message.replace("\n", "\r\n").encode()
