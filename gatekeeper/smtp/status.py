"""Every reply the relay gives, named, with its RFC 3463 enhanced status code.

aiosmtpd answers some commands itself with bare replies ("552 Error: Too much
mail data"); `ENHANCED` maps those to the same replies with enhanced codes, so
a client sees one consistent style whoever produced the answer.
"""

from __future__ import annotations

import re
import unicodedata

OK_SENDER = "250 2.1.0 Sender OK"
OK_RECIPIENT = "250 2.1.5 Recipient OK"
RELEASED = "250 2.0.0 Checked and queued for delivery, ref {ref}"
HELD = "250 2.0.0 held for a second check, ref {ref}"
BLOCKED = "550 5.7.1 {summary} (ref {ref})"
BLOCKED_NO_SUMMARY = "550 5.7.1 Not sent: the message must not go to these recipients (ref {ref})"

AUTH_REQUIRED = "530 5.7.0 Authentication required"
AUTH_THROTTLED = "454 4.7.0 Too many failed sign-ins from here or for this user: wait {wait}"
SENDER_NOT_YOURS = "553 5.7.1 Sender address rejected: you may not send as {address}"
FROM_NOT_YOURS = "550 5.7.1 The From: header names {address}, which you may not send as"
FROM_MISSING = "550 5.7.1 The message has no From: header naming you"
RECIPIENT_INVALID = "553 5.1.3 Recipient address {address} is not a valid address"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"

GATE_UNAVAILABLE = "451 4.3.0 The message could not be checked just now: {reason}; try again later"
STORE_UNAVAILABLE = "451 4.3.0 The message could not be stored just now; try again later"
SERVER_ERROR = "451 4.3.0 Temporary server error; try again later"

ENHANCED = {
    "250 OK": "250 2.0.0 OK",
    "552 Error: Too much mail data": "552 5.3.4 Message too big for system",
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Message size exceeds fixed maximum message size"
    ),
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)",
    "530 Must issue a STARTTLS command first": "530 5.7.0 Must issue a STARTTLS command first",
    "503 Error: need MAIL command": "503 5.5.1 Error: need MAIL command",
    "503 Error: need RCPT command": "503 5.5.1 Error: need RCPT command",
    "503 Error: nested MAIL command": "503 5.5.1 Error: nested MAIL command",
    "503 Already authenticated": "503 5.5.1 Already authenticated",
    "503 Error: send HELO first": "503 5.5.1 Error: send HELO first",
    "503 Error: send EHLO first": "503 5.5.1 Error: send EHLO first",
    "553 5.1.3 Error: malformed address": "553 5.1.3 Error: malformed address",
    "554 Command refused due to lack of security": "554 5.7.0 Command refused: TLS failed",
    "221 Bye": "221 2.0.0 Bye",
    "454 TLS not available": "454 4.7.0 TLS not available",
    "500 Error: bad syntax": "500 5.5.2 Error: bad syntax",
    "500 Command line too long": "500 5.5.2 Command line too long",
}

# An SMTP reply line is at most 512 octets including the code and CRLF (RFC 5321 4.5.3.1.5).
_MAX_TEXT = 400
_SPACE = re.compile(r"\s+")


def one_line(text: str, limit: int = _MAX_TEXT) -> str:
    """Text fit for an SMTP reply: one line, plain ASCII (clients may not speak UTF-8)."""
    flat = _SPACE.sub(" ", text).strip()
    ascii_text = unicodedata.normalize("NFKD", flat).encode("ascii", "ignore").decode("ascii")
    return ascii_text if len(ascii_text) <= limit else ascii_text[: limit - 3].rstrip() + "..."


def reply(template: str, **values: str) -> str:
    """The reply `template` with `values` made safe to put in it."""
    return template.format(**{name: one_line(value) for name, value in values.items()})
