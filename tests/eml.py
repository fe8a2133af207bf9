"""A one-call builder of real test emails, on top of tests/mailfiles.py."""

from __future__ import annotations

from collections.abc import Sequence

from tests.mailfiles import as_bytes, attach, email_message

STAFF_SENDER = "Alice Jones <a.jones@gatekeeper.example>"


def eml(
    *,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    sender: str = STAFF_SENDER,
    subject: str = "",
    body: str = "",
    html: str | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    """The bytes of an email; `attachments` are (file name, MIME type, content)."""
    message = email_message(
        body,
        subject=subject,
        sender=sender,
        to=", ".join(to),
        cc=", ".join(cc) or None,
        bcc=", ".join(bcc) or None,
        html=html,
    )
    for name, mime, data in attachments:
        attach(message, name, data, mime)
    return as_bytes(message)
