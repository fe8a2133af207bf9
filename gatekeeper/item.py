"""`Item`: the one shape every channel (SMTP relay, print hook, scan station) produces.

An item is what is about to leave: who sends it, who receives it, and all the
text it carries (subject, body, every attachment), with a reference to the
original bytes so that an approved item leaves exactly as written. Whatever
could not be read is recorded as a `problem`, never dropped: the gate holds
an item it cannot fully read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    POST = "post"


class RecipientKind(StrEnum):
    TO = "to"
    CC = "cc"
    BCC = "bcc"
    POSTAL = "postal"  # the addressee of a letter

    @property
    def visible(self) -> bool:
        """Whether the other recipients see this one (To and Cc do, Bcc does not)."""
        return self in (RecipientKind.TO, RecipientKind.CC)


@dataclass(frozen=True, slots=True)
class PostalAddressee:
    """The addressee of a letter as printed in its address block."""

    name: str
    lines: tuple[str, ...]
    postcode: str | None  # normalised when it could be read, else None


@dataclass(frozen=True, slots=True)
class Recipient:
    kind: RecipientKind
    address: str | None = None  # email address as written (None for a letter)
    display_name: str | None = None
    postal: PostalAddressee | None = None

    def label(self) -> str:
        if self.address:
            return self.address
        if self.postal:  # `Mark Smith, 3 Oak Road, Bradford BD1 4QQ`
            lines = ", ".join([self.postal.name, *self.postal.lines])
            return f"{lines} {self.postal.postcode}" if self.postal.postcode else lines
        return self.display_name or "(no address)"


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of body text; `quoted` marks text quoted from an earlier message."""

    text: str
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment and the text extracted from it, or why no text could be extracted."""

    name: str
    content_type: str
    size: int
    text: str = ""
    problem: str | None = None  # e.g. "encrypted PDF", "corrupt DOCX", "unknown format image/png"
    # Attachments found inside this one (a forwarded message's own attachments).
    inner: tuple[Attachment, ...] = ()

    def flattened(self) -> tuple[Attachment, ...]:
        """This attachment and every one nested inside it, depth first."""
        return (self, *(a for inner in self.inner for a in inner.flattened()))


@dataclass(frozen=True, slots=True)
class OriginalRef:
    """Where the original bytes are, and their fingerprint."""

    sha256: str
    size: int
    path: str | None = None

    @classmethod
    def of(cls, data: bytes, path: str | None = None) -> OriginalRef:
        return cls(hashlib.sha256(data).hexdigest(), len(data), path)


@dataclass(frozen=True, slots=True)
class Item:
    channel: Channel
    sender: str | None
    recipients: tuple[Recipient, ...]
    subject: str = ""
    body: tuple[Segment, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    original: OriginalRef | None = None
    message_id: str | None = None
    # Problems reading the item itself (broken MIME, undecodable parts, limits exceeded).
    problems: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def body_text(self) -> str:
        return "\n".join(segment.text for segment in self.body)

    @property
    def new_text(self) -> str:
        """The body without quoted earlier messages: what the sender wrote now."""
        return "\n".join(segment.text for segment in self.body if not segment.quoted)

    def all_attachments(self) -> tuple[Attachment, ...]:
        """Every attachment, including those inside forwarded messages."""
        return tuple(a for top in self.attachments for a in top.flattened())
