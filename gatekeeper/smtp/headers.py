"""What the relay reads from a message's header block itself: From:, Subject:, Message-ID:.

Only the header block is parsed (the bytes up to the first empty line), on the
event loop, so a 25 MB attachment costs nothing here; the full parse happens in
the gate's worker process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes
from email.header import decode_header, make_header
from email.utils import getaddresses
from functools import cached_property

_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
# Enough for any real header block; a longer one is read up to here.
_MAX_HEADER_BYTES = 1_000_000


@dataclass(frozen=True)
class HeaderFacts:
    from_values: tuple[str, ...]  # each From: header as written
    subject: str
    message_id: str | None

    @cached_property
    def from_addresses(self) -> tuple[str, ...]:
        """The addresses the From: headers name (read only when a signed-in sender's are
        checked: a trusted front MTA's mail needs none)."""
        return tuple(a for _, a in getaddresses(list(self.from_values)) if a)

    @classmethod
    def of(cls, raw: bytes) -> HeaderFacts:
        end = _END_OF_HEADERS.search(raw, 0, _MAX_HEADER_BYTES)
        block = raw[: end.end()] if end else raw[:_MAX_HEADER_BYTES]
        message = message_from_bytes(block)
        message_id = message.get("Message-ID")
        return cls(
            from_values=tuple(str(v) for v in message.get_all("From", [])),
            subject=_decoded(message.get("Subject")),
            message_id=str(message_id).strip()[:998] if message_id else None,
        )


def _decoded(value: object) -> str:
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value)))).strip()
    except (ValueError, LookupError, UnicodeError):
        return str(value).strip()
