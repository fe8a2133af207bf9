"""Reading MIME safely: a parser that stops at the limits, decoded headers, address lists.

The standard library parser (`email.policy.default`) does the work. Around
it: every part knows how deep it is nested and the parser stops at the first
part beyond `MailLimits` (each level of nesting costs time on every line
below it); header values are parsed once, not at every look-up (the parser
asks for each part's Content-Type five times); and an address that cannot
be parsed is kept as written, never dropped.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.errors import InvalidHeaderDefect
from email.feedparser import BytesFeedParser
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy, Policy
from functools import lru_cache
from typing import Any, cast

from gatekeeper.analysis.limits import MailLimits

FEED_CHUNK = 256 * 1024
# The header parser is slow on long values (seconds for 100 kB); the parser reads only
# this much of a header, and longer subjects and names are decoded by a simpler routine.
PARSED_HEADER_CHARS = 2000
# A message too large to read has at most this much of it read for its headers.
HEADER_SECTION_BYTES = 1024 * 1024
# An address longer than this is not a sound address: kept as written.
ADDRESS_CHARS = 500
LINE_BREAK = re.compile(r"\r|\n")
SURROGATE = re.compile("[\ud800-\udfff]")
CONTROL_CHARACTER = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
ADDRESS_SPECIALS = frozenset('"()<>[]\\,;:')
# Runs of ordinary text, whole encoded words (which may hide a comma) and escaped
# characters go by whole; the loop looks only at the special characters between them.
ADDRESS_TOKEN = re.compile(r'=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=|[^"()<>\[\]\\,;:=]+|\\.|.', re.DOTALL)
# The common address forms, read without the (slow) full parser.
PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:@\"]+@[^\s<>()\[\]\\,;:@\"]+\.[^\s<>()\[\]\\,;:@\"]+")
NAMED_ADDRESS = re.compile(
    r'(?:"(?P<quoted>[^"\\]*)"|(?P<plain>[^<>()\[\]\\"]*?))\s*<(?P<address>'
    + PLAIN_ADDRESS.pattern
    + r")>"
)
# Codecs Python has that no mail program means, some slow on hostile input.
UNSAFE_CODECS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class LimitReached(Exception):
    """The parser stopped: the message goes beyond `MailLimits`."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class HeaderClasses(HeaderRegistry):
    """The standard header registry, making each header class once, not at every header."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(key)
        return made


class ReadingPolicy(EmailPolicy):
    """`email.policy.default`, parsing each distinct header value once."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):
            return value
        unfolded = LINE_BREAK.sub("", value[: 2 * PARSED_HEADER_CHARS])
        return _parsed_header(self.header_factory, name, unfolded[:PARSED_HEADER_CHARS])


READING_POLICY = ReadingPolicy(header_factory=HeaderClasses())


@lru_cache(maxsize=2048)
def _parsed_header(factory: Any, name: str, value: str) -> Any:
    return factory(name, value)


class MimePart(EmailMessage):
    """A part of a message being read; it knows how deeply it is nested."""

    def __init__(self, policy: Policy[Any] | None = None, budget: PartBudget | None = None):
        super().__init__(policy)
        self.budget = budget
        self.depth = budget.base_depth if budget else 0

    def attach(self, payload: MimePart) -> None:  # type: ignore[override]
        if self.budget is not None:
            self.budget.admit(self, payload)
        super().attach(payload)


@dataclass(eq=False)
class PartBudget:
    """Counts the parts of one message as the parser meets them, and stops it at the limits."""

    limits: MailLimits
    base_depth: int = 0
    parts: int = 0
    root: MimePart | None = field(default=None, repr=False)

    def new_part(self, policy: Policy[Any] | None = None) -> MimePart:
        part = MimePart(policy, self)
        if self.root is None:
            self.root = part
        return part

    def admit(self, parent: MimePart, child: MimePart) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise LimitReached(
                f"the message has more than {self.limits.max_parts} parts: "
                "the rest of it was not read"
            )
        child.depth = parent.depth + 1
        if child.depth > self.limits.max_depth:
            raise LimitReached(
                f"the message is nested more than {self.limits.max_depth} levels deep: "
                "the rest of it was not read"
            )


def parse_message(data: bytes, limits: MailLimits, depth: int = 0) -> tuple[MimePart, str | None]:
    """The message's part tree, and why the parser stopped early (None if it did not)."""
    budget = PartBudget(limits, base_depth=depth)
    parser = BytesFeedParser(budget.new_part, policy=READING_POLICY)
    budget.root = None  # the parser builds one part when created, to try the factory
    view = memoryview(data)
    try:
        for start in range(0, len(data), FEED_CHUNK):
            parser.feed(bytes(view[start : start + FEED_CHUNK]))
        return cast(MimePart, parser.close()), None
    except LimitReached as stop:
        return budget.root or MimePart(READING_POLICY, budget), stop.problem


def parse_headers(data: bytes, limits: MailLimits) -> MimePart:
    """Only the header section of a message (for one too large to read whole)."""
    head = data[:HEADER_SECTION_BYTES]
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            head = head[: end + len(separator)]
            break
    root, _ = parse_message(head, limits)
    return root


def subparts(part: EmailMessage) -> list[MimePart]:
    """The parts inside a multipart or message/* part (none for a leaf)."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, MimePart)]


def readable(text: str) -> str:
    """Text with raw 8-bit bytes (which the parser keeps as surrogates) decoded."""
    if not SURROGATE.search(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def raw_header(message: EmailMessage, name: str) -> Iterator[str]:
    """Every `name` header's value as written, unfolded."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            yield LINE_BREAK.sub("", str(value))


def header_text(message: EmailMessage, name: str) -> str | None:
    """The first `name` header, decoded and unfolded; None if absent. Never raises."""
    value = next(raw_header(message, name), None)
    if value is None:
        return None
    if len(value) > PARSED_HEADER_CHARS:
        return readable(decode_words(value)).strip()
    try:
        text = str(READING_POLICY.header_fetch_parse(name, value))
    except Exception:  # the registry chokes on a few malformed values; read them leniently
        text = decode_words(value)
    return readable(text).strip()


def decode_words(value: str) -> str:
    """Encoded words (=?utf-8?q?...?=) decoded, the rest as written; linear in the length.

    Whitespace between two encoded words is dropped, as RFC 2047 says.
    """
    pieces: list[str] = []
    end = 0
    for match in ENCODED_WORD.finditer(value):
        between = value[end : match.start()]
        if not (pieces and end and between.isspace()):
            pieces.append(between)
        pieces.append(_decoded_word(*match.groups()))
        end = match.end()
    pieces.append(value[end:])
    return "".join(pieces)


def _decoded_word(charset: str, encoding: str, text: str) -> str:
    raw = text.encode("ascii", "surrogateescape")
    try:
        if encoding in "bB":
            data = base64.b64decode(raw + b"=" * (-len(raw) % 4))
        else:
            data = binascii.a2b_qp(raw, header=True)
    except (binascii.Error, ValueError):
        return f"=?{charset}?{encoding}?{text}?="
    return decode_text(data, charset.partition("*")[0])


# Charsets


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes as text: the declared charset if Python knows it, else UTF-8, else Windows-1252.

    Never raises; bytes that do not decode become U+FFFD.
    """
    for bom, codec in BOMS:
        if data.startswith(bom):
            return data.decode(codec, "replace")
    declared = _codec(charset)
    candidates = [declared] if declared not in (None, "ascii") else []
    for codec in (*candidates, "utf-8"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode(candidates[0] if candidates else "cp1252", "replace")


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        info = codecs.lookup(charset.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in UNSAFE_CODECS:
        return None
    return info.name


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR line ends as "\\n"."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def largely_unreadable(text: str, sample: int = 100_000) -> bool:
    """Whether more than a tenth of the text is replacement or control characters."""
    head = text[:sample]
    if len(head) < 20:
        return False
    bad = head.count("\ufffd") + sum(1 for _ in CONTROL_CHARACTER.finditer(head))
    return bad * 10 > len(head)


# Address lists


def address_list(value: str) -> list[tuple[str, str]]:
    """(display name, address) for each address in an address header.

    An address that cannot be parsed is kept as written (display name "").
    Group syntax ("undisclosed-recipients:;") contributes only its members.
    """
    return [entry for item in split_address_list(value) if (entry := _address(item))]


def _address(item: str) -> tuple[str, str] | None:
    if PLAIN_ADDRESS.fullmatch(item):
        return "", readable(item)
    named = NAMED_ADDRESS.fullmatch(item)
    if named:
        display_name = decode_words(named.group("quoted") or named.group("plain") or "").strip()
        if len(display_name) > 1 and display_name[0] == display_name[-1] == "'":
            display_name = display_name[1:-1]  # Outlook's 'Jane Smith' <jane@x>
        return readable(display_name.strip()), readable(named.group("address"))
    if len(item) > ADDRESS_CHARS:
        return "", readable(decode_words(item)).strip()
    try:
        header = _parsed_header(READING_POLICY.header_factory, "To", item)
        addresses = header.addresses
        sound = len(addresses) == 1 and not any(
            isinstance(defect, InvalidHeaderDefect) for defect in header.defects
        )
    except Exception:  # the registry chokes on a few malformed values; keep it as written
        addresses, sound = (), False
    if sound:
        address = addresses[0]
        local, _, domain = address.addr_spec.rpartition("@")
        if local and domain:
            return readable(address.display_name), readable(address.addr_spec)
    written = readable(decode_words(item)).strip()
    return ("", written) if written else None


def split_address_list(value: str) -> list[str]:
    """The items of an address list: split at commas and semicolons outside quotes,
    angle brackets and comments; a group's name ("team:") and closing ";" dropped."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    angle = comment = 0
    for token in ADDRESS_TOKEN.findall(value):
        if len(token) > 1 or token not in ADDRESS_SPECIALS:
            current.append(token)  # text, an escaped character or a whole encoded word
            continue
        if quoted:
            quoted = token != '"'
        elif comment:
            comment += {"(": 1, ")": -1}.get(token, 0)
        elif token == '"':
            quoted = True
        elif token == "(":
            comment = 1
        elif token in "<[":  # an address, or a domain literal such as [IPv6:::1]
            angle += 1
        elif token in ">]":
            angle = max(angle - 1, 0)
        elif not angle and token in ",;:":
            if token != ":":  # a group name before ":" is not an address
                items.append("".join(current))
            current = []
            continue
        current.append(token)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]
