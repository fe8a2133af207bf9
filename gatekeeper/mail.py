"""Raw email bytes to an `Item`: who sends it, who receives it, and all the text it carries.

`item_from_email` never raises, whatever the bytes: what cannot be read
becomes a problem on the item (or on an attachment) and the gate holds the
item for a person. The body prefers the plain-text alternative and marks
quoted earlier messages; attachments are read by `extract_attachment`;
forwarded messages become attachments with their own attachments inside.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email import errors
from email.message import EmailMessage
from urllib.parse import unquote

from gatekeeper.analysis.extract import clip_text, extract_attachment
from gatekeeper.analysis.html_text import html_to_segments
from gatekeeper.analysis.limits import DEFAULT_LIMITS, MailLimits, describe_bytes
from gatekeeper.analysis.mime import (
    PARSED_HEADER_CHARS,
    MimePart,
    address_list,
    decode_text,
    decode_words,
    header_text,
    largely_unreadable,
    normalise_newlines,
    parse_headers,
    parse_message,
    raw_header,
    readable,
    subparts,
)
from gatekeeper.analysis.quotes import quote_segments, text_segments
from gatekeeper.item import (
    Attachment,
    Channel,
    Item,
    OriginalRef,
    Recipient,
    RecipientKind,
    Segment,
)

__all__ = ["MailLimits", "forwarded_message", "item_from_email"]

ENCRYPTED = "encrypted message: its content cannot be checked"
OPAQUE_SIGNED = "signed message in wrapped (opaque S/MIME) form: its content cannot be checked"
BOUNDARY_MISSING = "the message's MIME structure is broken: a boundary is missing"
CLOSE_BOUNDARY_MISSING = (
    "the message's MIME structure is broken: a closing boundary is missing, "
    "so some content may not have been read"
)
HEADERS_RUN_ON = (
    "the message's MIME structure is broken: a header section does not end with a blank line, "
    "so some text may have been read as headers"
)
EMBEDDED_HEADERS = (
    "the message's MIME structure is broken: its text holds the headers of further parts, "
    "so a boundary is missing"
)
DAMAGED_BASE64 = (
    "the message's MIME structure is broken: an attachment's base64 encoding is damaged"
)
DAMAGED_BODY = "the message text's base64 encoding is damaged: some of it may not have been read"
UNREADABLE_CHARSET = "the message text is in a character encoding that could not be read"
UNREADABLE_PART = "a part of the message could not be read"
LONG_PART_HEADER = (
    "the message's MIME structure is broken: a part's Content header is too long to read in full"
)

STRUCTURE_DEFECTS: dict[type[errors.MessageDefect], str] = {
    errors.StartBoundaryNotFoundDefect: BOUNDARY_MISSING,
    errors.MultipartInvariantViolationDefect: BOUNDARY_MISSING,
    errors.NoBoundaryInMultipartDefect: BOUNDARY_MISSING,
    errors.MissingHeaderBodySeparatorDefect: HEADERS_RUN_ON,
}
BASE64_DEFECTS = (errors.InvalidBase64LengthDefect, errors.InvalidBase64CharactersDefect)
SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
PKCS7_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
FORWARDED_TYPES = frozenset({"message/rfc822", "message/global"})
# Content kept elsewhere, or a fragment: nothing here to read.
UNREADABLE_MESSAGE_TYPES = frozenset({"message/external-body", "message/partial"})
IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary", "quoted-printable", ""})
FORWARDED_HEADERS = ("From", "To", "Cc", "Date", "Subject")
# Encoded size below which an inline picture is taken for a logo (base64 is 4/3 of the bytes).
SIGNATURE_IMAGE_LIMIT = 128 * 1024
CONTENT_ID_REFERENCE = re.compile(r"""cid:([^\s"'<>)]+)""", re.IGNORECASE)
# A MIME part's header block inside a plain-text body (after a blank line, among other
# header lines): the boundaries around it are lost. Header and continuation lines are
# told apart by their first character, so the search stays linear.
EMBEDDED_PART_HEADER = re.compile(
    r"(?:\A|\n[ \t]*\n)(?:[\w-]+[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*)*?"
    r"Content-(?:Type|Transfer-Encoding)[ \t]*:[ \t]*\S",
    re.IGNORECASE,
)
PGP_MESSAGE = "-----BEGIN PGP MESSAGE-----"
WRITTEN_FILENAME = re.compile(r"""\b(?:file)?name\*?\s*=\s*["']?([^"';]+)""", re.IGNORECASE)


def item_from_email(
    raw: bytes,
    *,
    sender: str | None = None,
    envelope_recipients: Sequence[str] = (),
    limits: MailLimits = DEFAULT_LIMITS,
    original_path: str | None = None,
) -> Item:
    """The `Item` for an email as received; never raises."""
    original = OriginalRef.of(raw, original_path)
    try:
        return _item(raw, sender, envelope_recipients, limits, original)
    except Exception as error:  # the last guard of fail-closed: hold what could not be read
        problem = f"the message could not be read (an error in reading it: {type(error).__name__})"
        return Item(
            channel=Channel.EMAIL,
            sender=sender,
            recipients=_with_envelope([], envelope_recipients),
            original=original,
            problems=(problem,),
        )


def forwarded_message(
    name: str, data: bytes, limits: MailLimits = DEFAULT_LIMITS, depth: int = 0
) -> Attachment:
    """A forwarded message's bytes (.eml, message/rfc822) as an attachment holding its own."""
    if depth >= limits.max_depth:
        problem = (
            f"forwarded message nested more than {limits.max_depth} levels deep: "
            "its content was not checked"
        )
        return Attachment(name, "message/rfc822", len(data), problem=problem)
    root, stopped = parse_message(data, limits, depth + 1)
    reading = _Reading(limits, _Tally())
    if stopped:
        reading.problem(stopped)
    return reading.forwarded(name, root, len(data))


def _item(
    raw: bytes,
    sender: str | None,
    envelope_recipients: Sequence[str],
    limits: MailLimits,
    original: OriginalRef,
) -> Item:
    reading = _Reading(limits, _Tally())
    if len(raw) > limits.max_message_bytes:
        root = parse_headers(raw, limits)
        reading.problem(
            f"the message is larger than {describe_bytes(limits.max_message_bytes)}: "
            "only its headers were read"
        )
        body: tuple[Segment, ...] = ()
        attachments: tuple[Attachment, ...] = ()
    else:
        root, stopped = parse_message(raw, limits)
        if stopped:
            reading.problem(stopped)
        body, attachments = reading.read(root)
    return Item(
        channel=Channel.EMAIL,
        sender=sender or _from_address(root),
        recipients=_with_envelope(_header_recipients(root), envelope_recipients),
        subject=header_text(root, "Subject") or "",
        body=body,
        attachments=attachments,
        original=original,
        message_id=header_text(root, "Message-ID") or None,
        problems=tuple(reading.problems),
    )


# Sender and recipients


def _from_address(message: EmailMessage) -> str | None:
    for value in raw_header(message, "From"):
        for _, address in address_list(value):
            return address
    return None


def _header_recipients(message: EmailMessage) -> list[Recipient]:
    recipients = []
    for kind, name in (
        (RecipientKind.TO, "To"),
        (RecipientKind.CC, "Cc"),
        (RecipientKind.BCC, "Bcc"),
    ):
        for value in raw_header(message, name):
            for display_name, address in address_list(value):
                recipients.append(Recipient(kind, address, display_name or None))
    return recipients


def _with_envelope(
    recipients: list[Recipient], envelope_recipients: Sequence[str]
) -> tuple[Recipient, ...]:
    """Recipients without repeats (first kept); an envelope-only recipient is a Bcc recipient."""
    envelope = (address.strip().strip("<>").strip() for address in envelope_recipients)
    everyone = [*recipients, *(Recipient(RecipientKind.BCC, a) for a in envelope if a)]
    seen: set[str] = set()
    unique = []
    for recipient in everyone:
        key = (recipient.address or recipient.display_name or "").casefold()
        if key not in seen:
            seen.add(key)
            unique.append(recipient)
    return tuple(unique)


# The part tree


@dataclass
class _Tally:
    """Attachments counted across a message and the messages forwarded in it."""

    attachments: int = 0


@dataclass
class _Reading:
    """Reads one message's part tree (the sent one or a forwarded one)."""

    limits: MailLimits
    tally: _Tally
    problems: list[str] = field(default_factory=list)
    _body: list[MimePart] = field(default_factory=list, init=False)
    _html: list[MimePart] = field(default_factory=list, init=False)  # every HTML alternative
    _attached: list[MimePart] = field(default_factory=list, init=False)

    def problem(self, sentence: str) -> None:
        if sentence not in self.problems:
            self.problems.append(sentence)

    def read(self, root: MimePart) -> tuple[tuple[Segment, ...], tuple[Attachment, ...]]:
        """The body's segments and the attachments, in the order they appear."""
        self._walk(root, wants_body=True)
        body = self._body_segments()
        shown_inline = self._inline_content_ids()
        attachments = [
            attachment
            for part in self._attached
            if not _is_inline_image(part, shown_inline)
            and (attachment := self._attachment(part)) is not None
        ]
        return body, tuple(attachments)

    def forwarded(self, name: str, message: MimePart, size: int) -> Attachment:
        """A forwarded message as an attachment: its headers and text; its attachments inside."""
        body, attachments = self.read(message)
        headers = [
            f"{header}: {value}"
            for header in FORWARDED_HEADERS
            if (value := header_text(message, header))
        ]
        text = "\n".join([*headers, "", *(segment.text for segment in body)]).strip()
        text, clipped = clip_text(text, None, "forwarded message", self.limits)
        if clipped:
            self.problem(clipped)
        problem = "; ".join(self.problems) or None
        return Attachment(name, "message/rfc822", size, text, problem, tuple(attachments))

    # Walking the tree

    def _walk(self, part: MimePart, wants_body: bool) -> None:
        try:
            self._note_defects(part)
            self._visit(part, wants_body)
        except Exception:  # one unreadable part must not hide the rest of the message
            self.problem(UNREADABLE_PART)

    def _visit(self, part: MimePart, wants_body: bool) -> None:
        content_type = part.get_content_type()
        if content_type in SIGNATURE_TYPES:
            return  # a signature is not content
        if self._encrypted(part):
            return
        if part.get_content_maintype() == "multipart":
            children = subparts(part)
            if not part.is_multipart():  # its boundary never appeared: read it as text
                if wants_body:
                    self._body.append(part)
            elif content_type == "multipart/alternative":
                chosen = _preferred_alternative(children) if wants_body else None
                for child in children:
                    self._walk(child, child is chosen)
            else:
                for child in children:
                    self._walk(child, wants_body)
            return
        if content_type in ("text/plain", "text/html") and not _is_attached(part):
            if content_type == "text/html":
                self._html.append(part)
            if wants_body:
                self._body.append(part)
            return
        self._attached.append(part)

    def _encrypted(self, part: MimePart) -> bool:
        content_type = part.get_content_type()
        if content_type in ("multipart/encrypted", "application/pgp-encrypted"):
            self.problem(ENCRYPTED)
            return True
        if content_type not in PKCS7_TYPES:
            return False
        smime_type = str(part.get_param("smime-type", "") or "").lower()
        if smime_type == "certs-only":
            return True  # certificates only: nothing to read, nothing hidden
        self.problem(OPAQUE_SIGNED if smime_type == "signed-data" else ENCRYPTED)
        return True

    def _note_defects(self, part: MimePart) -> None:
        if any(
            len(value) > PARSED_HEADER_CHARS
            for key, value in part.raw_items()
            if key.lower().startswith("content-")
        ):
            self.problem(LONG_PART_HEADER)
        for defect in part.defects:
            if isinstance(defect, errors.CloseBoundaryNotFoundDefect):
                if not _ends_in_text(part):
                    self.problem(CLOSE_BOUNDARY_MISSING)
                continue
            sentence = STRUCTURE_DEFECTS.get(type(defect))
            if sentence:
                self.problem(sentence)

    # The body

    def _body_segments(self) -> tuple[Segment, ...]:
        segments: list[Segment] = []
        budget = self.limits.max_text_chars
        for part in self._body:
            text = self._text(part)
            if PGP_MESSAGE in text:
                self.problem(ENCRYPTED)
            if part.get_content_type() == "text/html":
                part_segments = quote_segments(html_to_segments(text))
            else:
                if EMBEDDED_PART_HEADER.search(text):
                    self.problem(EMBEDDED_HEADERS)
                part_segments = text_segments(text)
            for segment in part_segments:
                if len(segment.text) > budget:
                    self.problem(self._too_long())
                    segments.append(Segment(segment.text[:budget], segment.quoted))
                    return tuple(s for s in segments if s.text)
                budget -= len(segment.text)
                segments.append(segment)
        return tuple(segments)

    def _text(self, part: MimePart) -> str:
        """A text part decoded: no more bytes than the text limit can use (4 a character;
        HTML 8, as markup is longer than the text it shows)."""
        data = part.get_payload(decode=True)
        if any(isinstance(defect, BASE64_DEFECTS) for defect in part.defects):
            self.problem(DAMAGED_BODY)
        if not isinstance(data, bytes):
            return ""
        byte_limit = (
            8 if part.get_content_type() == "text/html" else 4
        ) * self.limits.max_text_chars
        if len(data) > byte_limit:
            self.problem(self._too_long())
        text = decode_text(data[:byte_limit], part.get_content_charset())
        if largely_unreadable(text):
            self.problem(UNREADABLE_CHARSET)
        return normalise_newlines(text)

    def _too_long(self) -> str:
        return (
            f"the message text is longer than {self.limits.max_text_chars:,} characters: "
            "the rest was not checked"
        )

    # Attachments

    def _inline_content_ids(self) -> set[str]:
        """Content-IDs the HTML shows in place (a signature logo), which are not attachments."""
        if not any(part.get("Content-ID") for part in self._attached):
            return set()
        references = (CONTENT_ID_REFERENCE.findall(_markup(part)) for part in self._html)
        return {unquote(ref).strip("<>").lower() for refs in references for ref in refs}

    def _attachment(self, part: MimePart) -> Attachment | None:
        self.tally.attachments += 1
        if self.tally.attachments > self.limits.max_attachments:
            self.problem(
                f"the message has more than {self.limits.max_attachments} attachments: "
                "the rest were not checked"
            )
            return None
        try:
            return self._read_attachment(part)
        except Exception:  # one unreadable attachment must not hide the rest
            name = _attachment_name(part)
            problem = "attachment could not be read: its content cannot be checked"
            return Attachment(name, part.get_content_type(), 0, problem=problem)

    def _read_attachment(self, part: MimePart) -> Attachment:
        name = _attachment_name(part)
        content_type = part.get_content_type()
        if content_type in UNREADABLE_MESSAGE_TYPES:
            problem = f"{content_type} attachment: its content cannot be read automatically"
            return Attachment(name, content_type, 0, problem=problem)
        if not part.is_multipart():
            return self._file(name, part)
        if content_type in FORWARDED_TYPES:
            return self._forwarded_part(name, part, subparts(part))
        # A report (delivery status, read receipt): header blocks the parser already read.
        text, clipped = clip_text("\n".join(_report_lines(part)), None, content_type, self.limits)
        return Attachment(name, content_type, len(text), text, clipped)

    def _file(self, name: str, part: MimePart) -> Attachment:
        """An attached file: decoded (within the size limit) and read by what it is."""
        content_type = part.get_content_type()
        payload = part.get_payload()
        decoded_size = (len(payload) if isinstance(payload, str) else 0) * 3 // 4
        if decoded_size > self.limits.max_attachment_bytes:
            limit = describe_bytes(self.limits.max_attachment_bytes)
            problem = f"attachment larger than {limit}: its content was not checked"
            return Attachment(name, content_type, decoded_size, problem=problem)
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        if any(isinstance(defect, BASE64_DEFECTS) for defect in part.defects):
            self.problem(DAMAGED_BASE64)
            if any(isinstance(d, errors.InvalidBase64LengthDefect) for d in part.defects):
                problem = "damaged attachment: its encoding could not be decoded"
                return Attachment(name, content_type, len(data), problem=problem)
        charset = part.get_content_charset()
        declared = f"{content_type}; charset={charset}" if charset else content_type
        return extract_attachment(name, declared, data, self.limits, part.depth)

    def _forwarded_part(self, name: str, part: MimePart, payload: list[MimePart]) -> Attachment:
        if not payload:
            return Attachment(name, "message/rfc822", 0)
        encoded = _transfer_decoded(part, payload[0])
        if encoded is not None:  # mail programs may not encode a message/rfc822, but some do
            return forwarded_message(name, encoded, self.limits, part.depth)
        inner = _Reading(self.limits, self.tally)
        return inner.forwarded(name, payload[0], _serialised_size(payload[0]))


# Parts


def _preferred_alternative(alternatives: list[MimePart]) -> MimePart | None:
    """The alternative read as the body: plain text if it says anything, else HTML, else the
    richest (last) structured one."""
    for wanted in ("text/plain", "text/html"):
        for part in alternatives:
            if part.get_content_type() == wanted and not _is_attached(part):
                payload = part.get_payload()
                if not isinstance(payload, str) or payload.strip():
                    return part
    structured = [part for part in alternatives if part.is_multipart()]
    candidates = structured or alternatives
    return candidates[-1] if candidates else None


def _is_attached(part: MimePart) -> bool:
    return part.get_content_disposition() == "attachment" or part.get_filename() is not None


def _is_inline_image(part: MimePart, shown_inline: set[str]) -> bool:
    """A small picture the HTML shows in place: a signature logo, not content to check.

    A large one is a pasted screenshot (of a case file, say) and counts as an attachment.
    """
    content_id = str(part.get("Content-ID") or "").strip().strip("<>").lower()
    if not (content_id and part.get_content_maintype() == "image" and content_id in shown_inline):
        return False
    encoded = part.get_payload()
    return isinstance(encoded, str) and len(encoded) < SIGNATURE_IMAGE_LIMIT


def _ends_in_text(multipart: MimePart) -> bool:
    """Whether a multipart missing its closing boundary ran into a text part, which then
    holds everything up to the end (nothing is lost); otherwise content may be hidden."""
    children = subparts(multipart)
    if not children:
        return False
    last = children[-1]
    encoding = str(last.get("Content-Transfer-Encoding", "") or "").strip().lower()
    return last.get_content_maintype() == "text" and encoding in IDENTITY_ENCODINGS


def _attachment_name(part: MimePart) -> str:
    try:
        filename = part.get_filename()
    except Exception:  # a malformed disposition header: the name is not worth failing for
        filename = None
    filename = filename or _written_filename(part)
    if filename:
        return readable(filename).strip() or filename
    if part.get_content_type() in FORWARDED_TYPES:
        inner = subparts(part)
        subject = header_text(inner[0], "Subject") if inner else None
        return f"forwarded message: {subject}" if subject else "forwarded message"
    return f"unnamed {part.get_content_type()} attachment"


def _markup(part: MimePart) -> str:
    """An HTML part's markup, enough to find what it references (Content-IDs are ASCII)."""
    data = part.get_payload(decode=True)
    return data.decode("latin-1") if isinstance(data, bytes) else ""


def _written_filename(part: MimePart) -> str | None:
    """A file name the header parser rejected (e.g. an unquoted encoded word), as written."""
    for header in ("Content-Disposition", "Content-Type"):
        for value in raw_header(part, header):
            match = WRITTEN_FILENAME.search(value)
            if match:
                return decode_words(match.group(1).strip())
    return None


def _report_lines(part: MimePart) -> Iterator[str]:
    """A delivery or read report's fields, one per line."""
    for block in subparts(part):
        for key, value in block.raw_items():
            yield f"{key}: {readable(str(value))}"


def _transfer_decoded(part: MimePart, inner: MimePart) -> bytes | None:
    """The bytes of a forwarded message that was (against the rules) base64 or QP encoded."""
    encoding = str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
    if encoding not in ("base64", "quoted-printable"):
        return None
    raw = inner.get_payload(decode=True)  # the inner part has no encoding: its bytes as sent
    if not isinstance(raw, bytes):
        return None
    if encoding == "quoted-printable":
        return quopri.decodestring(raw)
    try:
        return base64.b64decode(b"".join(raw.split()), validate=False)
    except binascii.Error:
        return None


def _serialised_size(message: MimePart) -> int:
    try:
        return len(message.as_bytes())
    except Exception:  # size is informative only
        return 0
