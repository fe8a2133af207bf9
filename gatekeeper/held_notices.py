"""Notices about held items beyond the relay's own: corrected, expired, waiting too long.

Short plain text in the relay's notice style (what happened, the ref, what to
do next), sent through the same outbound queue with the null sender.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterable, Sequence
from email.charset import QP, Charset
from email.header import Header
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid

WIDTH = 72
_WIRE = compat32.clone(linesep="\r\n")


def corrected(
    *,
    sender_address: str,
    to: str,
    ref: str,
    subject: str,
    changes: Sequence[tuple[str, str]],
    checker: str,
    note: str,
) -> bytes:
    swapped = "; ".join(f"{new} instead of {old}" for old, new in changes)
    return _notice(
        sender_address,
        to,
        f"Sent to the record's address: {_shown(subject)} (ref {ref})",
        [
            f'Your email "{_shown(subject)}" (ref {ref}) was sent after a second check, but'
            f" {checker} corrected where it went: {swapped}. The record has these addresses"
            " for the people you wrote to. The message itself was sent as you wrote it.",
            f"Their note: {note}" if note.strip() else "",
            "What to do next: nothing for this message. Use the record's address next time"
            " (check your address book or autocomplete).",
        ],
    )


def expired(
    *,
    sender_address: str,
    to: str,
    ref: str,
    subject: str,
    recipients: Sequence[str],
    hours: float,
) -> bytes:
    return _notice(
        sender_address,
        to,
        f"Not sent, no second check in time: {_shown(subject)} (ref {ref})",
        [
            f'Your email "{_shown(subject)}" to {_listed(recipients)} was not sent: it was'
            f" held for a second check (ref {ref}) and no checker decided on it within"
            f" {hours:g} hours, so Gatekeeper has returned it to you.",
            "What to do next: if it still needs to go, check it against the case record and"
            f" send it again as a new message, or ask a checker in your team about ref {ref}.",
        ],
    )


def escalated(
    *,
    sender_address: str,
    to: str,
    ref: str,
    subject: str,
    sender: str,
    minutes: float,
    link: str,
    letter: bool = False,
) -> bytes:
    where = f" Open it here: {link}" if link else ""
    what = "letter" if letter else "email"  # a printed letter waits in the same queue
    item = "A letter" if letter else "An email"
    return _notice(
        sender_address,
        to,
        f"Waiting for a second check for {_age(minutes)}: ref {ref}",
        [
            f'{item} from {sender}, "{_shown(subject)}" (ref {ref}),'
            f" has waited {_age(minutes)} for a second check and has been escalated.{where}",
            "What to do next: if you can, open the approval queue and decide on it (you cannot"
            f" decide on your own {what}).",
        ],
    )


def _notice(sender_address: str, to: str, subject: str, paragraphs: Iterable[str]) -> bytes:
    charset = Charset("utf-8")
    charset.body_encoding = QP  # readable as it travels, whatever its names contain
    text = "\n\n".join(textwrap.fill(p, WIDTH) for p in paragraphs if p)  # one paragraph a block
    message = MIMEText(text + "\n", "plain", charset)  # type: ignore[arg-type]
    message["From"] = formataddr(("Gatekeeper", sender_address))
    message["To"] = to
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=sender_address.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    return message.as_bytes(policy=_WIRE)


def _shown(subject: str) -> str:
    flat = " ".join(subject.split())
    return (flat[:77] + "...") if len(flat) > 80 else (flat or "(no subject)")


def _listed(recipients: Sequence[str]) -> str:
    if len(recipients) <= 3:
        return ", ".join(recipients) or "(no recipients)"
    return f"{', '.join(recipients[:3])} and {len(recipients) - 3} more"


def _age(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    return f"{minutes / 60:.0f} hours"
