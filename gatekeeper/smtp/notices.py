"""Notices to senders, and delivery status notifications: short, plain, and what to do next.

A held, blocked or returned message gets a notice saying what was found, what
the record expected, the ref, and the next step. A message the upstream
refuses, or that could not be delivered in the retry lifetime, gets an RFC 3464
delivery status notification. All go out through the same queue with the null
envelope sender, so a notice that cannot be delivered never causes another.
"""

from __future__ import annotations

import datetime as dt
import socket
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

from gatekeeper.config import Settings

WIDTH = 72
# The MIME classes below are compat32 messages; written out with SMTP line endings.
_WIRE = compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class NoticeWriter:
    """Writes notices from `from_address`; `node` names this relay in reports."""

    from_address: str
    node: str

    def held(
        self,
        *,
        to: str,
        ref: str,
        subject: str,
        recipients: Sequence[str],
        findings: Sequence[Mapping[str, Any]],
    ) -> bytes:
        body = [
            f'Your email "{_shown(subject)}" to {_listed(recipients)} has not been sent yet.'
            f" It is held for a second check by a colleague (ref {ref}).",
            *_found(findings),
            "What happens next: a checker approves it (it then goes exactly as you wrote it)"
            " or returns it to you with a note. You need do nothing now. If it is urgent,"
            f" ask a checker in your team to look at ref {ref}.",
        ]
        return self._notice(to, f"Held for a second check: {_shown(subject)} (ref {ref})", body)

    def blocked(
        self,
        *,
        to: str,
        ref: str,
        subject: str,
        recipients: Sequence[str],
        findings: Sequence[Mapping[str, Any]],
    ) -> bytes:
        body = [
            f'Your email "{_shown(subject)}" to {_listed(recipients)} was not sent'
            f" (ref {ref}). It must not go as it is.",
            *_found(findings),
            "What to do next: correct the recipients or the content and send it again as a"
            " new message. If you think this is wrong, contact your governance team"
            f" quoting ref {ref}.",
        ]
        return self._notice(to, f"Not sent: {_shown(subject)} (ref {ref})", body)

    def returned(
        self,
        *,
        to: str,
        ref: str,
        subject: str,
        recipients: Sequence[str],
        findings: Sequence[Mapping[str, Any]],
        checker: str,
        note: str,
    ) -> bytes:
        body = [
            f'Your email "{_shown(subject)}" to {_listed(recipients)} was not sent:'
            f" {checker} returned it after a second check (ref {ref}).",
            f"Their note: {note}" if note.strip() else "They left no note.",
            *_found(findings),
            "What to do next: correct it and send it again as a new message, or ask"
            f" {checker} about ref {ref}.",
        ]
        return self._notice(to, f"Returned by a checker: {_shown(subject)} (ref {ref})", body)

    def delivery_report(
        self,
        *,
        to: str,
        ref: str,
        subject: str,
        failures: Sequence[tuple[str, str]],
        original_headers: bytes,
        arrival: dt.datetime,
        expired: bool,
        upstream: str,
    ) -> bytes:
        """An RFC 3464 report: `failures` are (recipient, the upstream's last reply)."""
        if expired:
            opening = (
                f'Your email "{_shown(subject)}" (ref {ref}) could not be delivered to the'
                " recipients below in the time allowed; Gatekeeper has stopped trying."
            )
        else:
            opening = (
                f'Your email "{_shown(subject)}" (ref {ref}) was refused for the recipients'
                " below; any other recipients are not affected."
            )
        lines = [opening, *(f"  {rcpt}: {reply}" for rcpt, reply in failures)]
        lines.append(
            "What to do next: check the addresses against the case record and send again"
            " to those recipients only."
        )
        human = _plain(_wrapped(lines))
        per_message = _fields(
            ("Reporting-MTA", f"dns; {self.node}"),
            ("Arrival-Date", format_datetime(_aware(arrival))),
        )
        per_recipient = [
            _fields(
                ("Final-Recipient", f"rfc822; {rcpt}"),
                ("Action", "failed"),
                ("Status", _status_of(reply, expired)),
                ("Remote-MTA", f"dns; {upstream}"),
                ("Diagnostic-Code", f"smtp; {reply}"),
            )
            for rcpt, reply in failures
        ]
        status = MIMEBase("message", "delivery-status")
        status.set_payload([per_message, *per_recipient])
        headers = MIMEBase("text", "rfc822-headers")
        headers.set_payload(original_headers.decode("utf-8", "replace"))
        report = MIMEMultipart("report", report_type="delivery-status")
        for part in (human, status, headers):
            report.attach(part)
        title = "Delivery failed" if not expired else "Delivery expired"
        return self._finish(report, to, f"{title}: {_shown(subject)} (ref {ref})")

    def _notice(self, to: str, subject: str, paragraphs: Iterable[str]) -> bytes:
        return self._finish(_plain(_wrapped(paragraphs)), to, subject)

    def _finish(self, message: Message, to: str, subject: str) -> bytes:
        message["From"] = formataddr(("Gatekeeper", self.from_address))
        message["To"] = to
        message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
        message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        message["Message-ID"] = make_msgid(domain=self.from_address.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
        return message.as_bytes(policy=_WIRE)


def node_name(settings: Settings) -> str:
    """This relay node's name: the `node_name` setting, else the host name."""
    return settings.node_name or socket.gethostname()


def notice_writer(settings: Settings) -> NoticeWriter:
    """Notices come from `notice_from`, else gatekeeper@ the first internal domain."""
    node = node_name(settings)
    domain = settings.internal_domains[0] if settings.internal_domains else node
    return NoticeWriter(settings.notice_from or f"gatekeeper@{domain}", node)


def _plain(text: str) -> MIMEText:
    # Quoted-printable keeps a notice readable as it travels, whatever its names contain.
    charset = Charset("utf-8")
    charset.body_encoding = QP
    return MIMEText(text, "plain", charset)  # type: ignore[arg-type]


def _found(findings: Sequence[Mapping[str, Any]]) -> list[str]:
    if not findings:
        return []
    lines = ["What Gatekeeper found:"]
    for finding in findings:
        lines.append(f"- {finding.get('summary', '')}")
        expected = (finding.get("evidence") or {}).get("expected")
        if expected and str(expected) not in str(finding.get("summary", "")):
            lines.append(f"  The record expected: {expected}")
    return ["\n".join(lines)]


def _wrapped(paragraphs: Iterable[str]) -> str:
    out = []
    for paragraph in paragraphs:
        out.append(
            "\n".join(
                textwrap.fill(line, WIDTH, subsequent_indent="  " if line[:1] in "- " else "")
                for line in paragraph.splitlines()
            )
        )
    return "\n\n".join(out) + "\n"


def _fields(*pairs: tuple[str, str]) -> Message:
    block = Message()
    for name, value in pairs:
        block[name] = value
    return block


def _status_of(reply: str, expired: bool) -> str:
    parts = reply.split()
    if len(parts) > 1 and parts[1].count(".") == 2 and parts[1][0] in "245":
        return parts[1]
    return "4.4.7" if expired else "5.0.0"


def _shown(subject: str) -> str:
    flat = " ".join(subject.split())
    return (flat[:77] + "...") if len(flat) > 80 else (flat or "(no subject)")


def _listed(recipients: Sequence[str]) -> str:
    if len(recipients) <= 3:
        return ", ".join(recipients) or "(no recipients)"
    return f"{', '.join(recipients[:3])} and {len(recipients) - 3} more"


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
