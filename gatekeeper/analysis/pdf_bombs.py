"""How much a PDF's streams unpack to, measured before PDFium opens it (PDF bombs).

PDFium inflates a page's content streams whole, in memory: a 2 MB PDF of
deflated spaces costs it 3 GB and 16 s. So every stream in the file's bytes
is unpacked here first, filter by filter as a reader would, counting the bytes
and keeping no more than one piece of the last stage's output: a PDF whose
streams unpack to more than `max_unpacked_bytes` is not opened, and the item
is held with that reason.

The streams are found in the raw bytes, not through the cross-reference
table, so a damaged or doctored table hides none from the count. A Flate
stream is recognised by its zlib header whatever its dictionary declares
(PDFium decodes nothing else as Flate), and a Flate stream's output that is
itself a zlib stream is inflated too (a filter array behind a reference).
An encrypted PDF's stream bytes are ciphertext: those are read through pypdf,
which decrypts them as PDFium would (the empty user password).
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import chain

from pypdf import PdfReader
from pypdf.errors import LimitReachedError
from pypdf.filters import ASCII85Decode, ASCIIHexDecode, LZWDecode, RunLengthDecode
from pypdf.generic import ArrayObject, IndirectObject, NameObject, StreamObject

from gatekeeper.analysis.limits import MailLimits, describe_bytes

ENCRYPTED_PDF = "encrypted PDF: its content cannot be checked"

# pypdf's decoders say when they forgive damage ("Ignoring missing Ascii85 end marker."):
# for hostile files decoded only to be measured, that is noise in the services' logs.
logging.getLogger("pypdf.filters").setLevel(logging.ERROR)

# The "stream" keyword and its end of line (PDFium takes CR LF, LF or CR); "endstream"
# matches too, and is passed over (a look-behind here would make the search crawl).
_STREAM = re.compile(rb"stream(?:\r\n|\n|\r)")
_END = b"end"
_ENDSTREAM = b"endstream"
# Where a stream's dictionary may start: the object header before it, this far back at most.
_DICTIONARY_REACH = 64 * 1024
_OBJ = b"obj"
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]{0,1024}\]|/[^\s/\[\]<>()%{}]*|\d+\s+\d+\s+R)")
_NAME = re.compile(rb"/([^\s/\[\]<>()%{}]*)")
_LENGTH = re.compile(rb"/Length\s+(\d+)(?:\s+(\d+)\s+R)?")
_REFERENCE = re.compile(rb"(\d+)\s+(\d+)\s+R")
# A plain object whose value a stream's dictionary may point to: "12 0 obj 3456 endobj".
# A plain object's value after its "N G obj": a number, a short array or a name.
_PLAIN_VALUE = re.compile(rb"\s*(\d+|\[[^\]]{0,1024}\]|/[^\s/\[\]<>()%{}]*)")
# Looking an object up searches the file: each distinct one costs this share of its size.
_LOOKUP_WORK_SHARE = 16
_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
# /Encrypt in a trailer or a cross-reference stream's dictionary, its name maybe escaped.
_ENCRYPT = re.compile(rb"/(?:E|#45)(?:n|#6[eE])(?:c|#63)(?:r|#72)(?:y|#79)(?:p|#70)(?:t|#74)\b")
# Stream bytes that read as ASCII85 or hex text (their filter declared where it was not found).
_ASCII85_TEXT = re.compile(rb"[!-uz\s]{16,}")
_HEX_TEXT = re.compile(rb"[0-9A-Fa-f\s]{16,}")
_ABBREVIATIONS = {"Fl": "FlateDecode", "AHx": "ASCIIHexDecode", "A85": "ASCII85Decode"}
_ABBREVIATIONS |= {"LZW": "LZWDecode", "RL": "RunLengthDecode"}
# Decoders that give all their output at once: pypdf's, which stop at their own limit.
_WHOLE: dict[str, Callable[[bytes], bytes]] = {
    "ASCIIHexDecode": ASCIIHexDecode.decode,
    "ASCII85Decode": ASCII85Decode.decode,
    "LZWDecode": LZWDecode.decode,
    "RunLengthDecode": RunLengthDecode.decode,
}
_FLATE = "FlateDecode"
_MAX_FILTERS = 8
_FIRST_FEED = 4 * 1024  # compressed bytes given to zlib first (most streams are small)
_FEED = 64 * 1024  # then at a time
_OUTPUT = 1024 * 1024  # and the most it may give back for them at once
# The measuring itself is bounded: the bytes looked at (dictionaries, stream bytes given to
# a decoder, a fixed cost per "stream" keyword) may come to this many times the file's size
# plus a little, so a file of keywords or of streams overlapping each other cannot make it
# slow; a real PDF looks at each byte about once.
_WORK_PER_BYTE = 4
_WORK_ALLOWANCE = 4 * 1024 * 1024
_WORK_PER_STREAM = 512


class _OverBudget(Exception):
    """The streams unpack to more than the limit: counting stops."""


class _TooMuchWork(Exception):
    """Measuring the file takes far more looking than its size explains: counting stops."""


class _Tally:
    """Unpacked bytes counted against the limit, and the work of measuring against its own."""

    def __init__(self, budget: int, work: int) -> None:
        self.left = budget
        self.work_left = work

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise _OverBudget

    def spend(self, size: int) -> None:
        self.work_left -= size
        if self.work_left < 0:
            raise _TooMuchWork


def pdf_unpack_problem(data: bytes, limits: MailLimits) -> str | None:
    """Why the PDF must not be opened (its streams unpack to too much), or None."""
    tally = _Tally(limits.max_unpacked_bytes, _WORK_PER_BYTE * len(data) + _WORK_ALLOWANCE)
    try:
        if _ENCRYPT.search(data):
            _count_encrypted(data, tally)
        else:
            _count_raw(data, tally)
    except _OverBudget:
        limit = describe_bytes(limits.max_unpacked_bytes)
        return f"PDF unpacks to more than {limit} (a PDF bomb?): its content cannot be checked"
    except _TooMuchWork:
        return "PDF is built to be slow to measure (a PDF bomb?): its content cannot be checked"
    except Exception:  # unmeasured is unchecked: PDFium must not open it blind
        return ENCRYPTED_PDF if _ENCRYPT.search(data) else "corrupt PDF: it could not be measured"
    return None


def _count_raw(data: bytes, tally: _Tally) -> None:
    """Count what every stream in the file's bytes unpacks to."""
    view = memoryview(data)
    objects = _PlainObjects(data, tally)
    ends = _StreamEnds(data)
    previous = 0  # a dictionary starts after the keyword before it
    for match in _STREAM.finditer(data):
        if data[match.start() - 3 : match.start()] == _END:
            continue
        start = match.end()
        dictionary = _dictionary_before(data, match.start(), previous)
        previous = start
        tally.spend(_WORK_PER_STREAM + len(dictionary))
        filters = _filters(dictionary, objects)
        if filters is None:  # declared somewhere not found: judge by what the bytes look like
            filters = _filters_by_look(view[start : start + 1024])
        first = filters[0] if filters else None
        if first == _FLATE or (first not in _WHOLE and _zlib_header(view[start : start + 2])):
            # zlib stops at the end of its stream: whatever follows it costs nothing
            _unpack(view[start:], [_FLATE, *filters[1:]], tally)
        elif first in _WHOLE:
            end = _stream_end(dictionary, start, ends, objects)
            _unpack(view[start:end], filters, tally)


def _count_encrypted(data: bytes, tally: _Tally) -> None:
    """The same count over an encrypted PDF's decrypted streams (none if it stays locked:
    PDFium refuses it too, and says so)."""
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        return
    for generation, numbers in reader.xref.items():
        for number in numbers:
            found = IndirectObject(number, generation, reader).get_object()
            if not isinstance(found, StreamObject):
                continue
            declared = found.get("/Filter")
            names = declared if isinstance(declared, ArrayObject) else [declared]
            filters = [_canonical(str(n)[1:]) for n in names if isinstance(n, NameObject)]
            encoded = memoryview(found._data)  # decrypted, not decoded
            if not filters and _zlib_header(encoded):
                filters = [_FLATE]
            _unpack(encoded, filters, tally)


def _unpack(encoded: memoryview, filters: list[str], tally: _Tally) -> None:
    """Count the output of each filter in turn (a reader holds each stage). A filter that
    cannot be undone here (an image's) ends it; so does damage, as it does for a reader."""
    current = encoded
    for position, name in enumerate(filters[:_MAX_FILTERS]):
        # The file's own bytes cost work; later stages' input is output, already counted.
        payer = tally if position == 0 else None
        following = filters[position + 1 : _MAX_FILTERS]
        if name == _FLATE and not any(f == _FLATE or f in _WHOLE for f in following):
            _drain(_inflations(_pieces(current), payer), tally, position)  # last: counted only
            return
        try:
            if name == _FLATE:
                output = b"".join(_counted(_inflations(_pieces(current), payer), tally))
            elif name in _WHOLE:
                if payer is not None:
                    payer.spend(len(current))
                output = _WHOLE[name](bytes(current))
                tally.take(len(output))
            else:
                return
        except (_OverBudget, _TooMuchWork):
            raise
        except LimitReachedError:
            raise _OverBudget from None
        except Exception:
            return
        current = memoryview(output)


def _drain(inflated: Iterator[bytes], tally: _Tally, depth: int) -> None:
    """Count inflated output to its end; output that is itself a zlib stream is inflated
    (and counted) too."""
    counted = _counted(inflated, tally)
    head = b""
    for piece in counted:
        head += piece
        if len(head) >= 2:
            break
    rest = chain([head], counted)
    if depth < _MAX_FILTERS and _zlib_header(memoryview(head)):
        _drain(_inflations(rest, None), tally, depth + 1)
    else:
        for _ in rest:
            pass


def _pieces(data: memoryview) -> Iterator[memoryview]:
    yield data[:_FIRST_FEED]
    for offset in range(_FIRST_FEED, len(data), _FEED):
        yield data[offset : offset + _FEED]


def _inflations(encoded: Iterable[bytes | memoryview], payer: _Tally | None) -> Iterator[bytes]:
    """A zlib stream inflated a piece at a time, up to its end or the first damage (where
    PDFium stops too); `payer` spends work on the compressed bytes it takes."""
    inflater = zlib.decompressobj()
    for piece in encoded:
        try:
            yield inflater.decompress(piece, _OUTPUT)
            while inflater.unconsumed_tail and not inflater.eof:
                yield inflater.decompress(inflater.unconsumed_tail, _OUTPUT)
        except zlib.error:
            if payer is not None:
                payer.spend(len(piece))
            return
        if payer is not None:
            payer.spend(len(piece) - len(inflater.unused_data))
        if inflater.eof:
            return


def _counted(pieces: Iterator[bytes], tally: _Tally) -> Iterator[bytes]:
    for piece in pieces:
        tally.take(len(piece))
        yield piece


def _zlib_header(data: memoryview | bytes) -> bool:
    """Whether `data` starts as a zlib stream does (deflate, a valid check value)."""
    if len(data) < 2:
        return False
    first, second = data[0], data[1]
    return first & 0x0F == 8 and first >> 4 <= 7 and (first << 8 | second) % 31 == 0


def _dictionary_before(data: bytes, keyword: int, previous: int) -> bytes:
    """The text from the object header before a "stream" keyword to the keyword (never
    reaching back past the `previous` one)."""
    floor = max(previous, keyword - _DICTIONARY_REACH)
    header = data.rfind(_OBJ, floor, keyword)
    dictionary = data[header + len(_OBJ) if header >= 0 else floor : keyword]
    # PDFium reads "/F#69lter" as "/Filter": so must this
    return _ESCAPE.sub(_unescaped, dictionary) if b"#" in dictionary else dictionary


def _filters(dictionary: bytes, objects: _PlainObjects) -> list[str] | None:
    """The filters a stream's dictionary declares, in the order they are undone; None when
    it points to them and they are not to be found as a plain object."""
    found = _FILTER.search(dictionary)
    if found is None:
        return []
    value = found.group(1)
    reference = _REFERENCE.fullmatch(value)
    if reference is not None:
        resolved = objects.get(*reference.groups())
        if resolved is None:
            return None
        value = resolved
    return [_canonical(name.decode("latin-1")) for name in _NAME.findall(value)]


def _filters_by_look(head: memoryview) -> list[str]:
    if _HEX_TEXT.fullmatch(head):
        return ["ASCIIHexDecode"]
    if _ASCII85_TEXT.fullmatch(head):
        return ["ASCII85Decode"]
    return []


def _unescaped(match: re.Match[bytes]) -> bytes:
    return bytes([int(match.group(1), 16)])


def _canonical(name: str) -> str:
    return _ABBREVIATIONS.get(name, name)


def _stream_end(dictionary: bytes, start: int, ends: _StreamEnds, objects: _PlainObjects) -> int:
    """Where a stream's bytes end: at its declared /Length or its "endstream", whichever is
    further (a reader trusts the one, or looks for the other), never past the file."""
    end = ends.after(start)
    length = _LENGTH.search(dictionary)
    if length is not None:
        number, generation = length.groups()
        value = number if generation is None else objects.get(number, generation)
        # a length that cannot be found could be any: the rest of the file
        declared = int(value) if value is not None and value.isdigit() else len(ends.data)
        end = max(end, min(len(ends.data), start + declared))
    return end


class _StreamEnds:
    """The next "endstream" after a position, for positions asked in increasing order: the
    file is searched once, however many streams lack one."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._found = -1  # the last one found, or len(data) when there are no more

    def after(self, start: int) -> int:
        if self._found < start:
            found = self.data.find(_ENDSTREAM, start)
            self._found = len(self.data) if found < 0 else found
        return self._found


class _PlainObjects:
    """The values of plain objects a stream's dictionary points to ("12 0 obj 3456",
    "9 0 obj [/FlateDecode]"), each found when first asked for; None when not found."""

    def __init__(self, data: bytes, tally: _Tally) -> None:
        self.data = data
        self.tally = tally
        self._values: dict[tuple[int, int], bytes | None] = {}

    def get(self, number: bytes, generation: bytes) -> bytes | None:
        key = (int(number), int(generation))
        if key not in self._values:
            self.tally.spend(len(self.data) // _LOOKUP_WORK_SHARE)
            self._values[key] = self._find(b"%d %d obj" % key)
        return self._values[key]

    def _find(self, header: bytes) -> bytes | None:
        at = self.data.find(header)
        while at > 0 and self.data[at - 1 : at].isdigit():  # "112 0 obj" is not "12 0 obj"
            at = self.data.find(header, at + 1)
        if at < 0:
            return None
        value = _PLAIN_VALUE.match(self.data, at + len(header))
        return value.group(1) if value else None
