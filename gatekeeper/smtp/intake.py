"""Intake: a message is on disk before it gets a reply, and the gate decides what the reply is.

On the end of DATA the raw bytes are written durably (item + content, one
transaction) while the gate checks them in a worker process under a time limit.
Once both are done the decision is written, with the outbound rows or the
sender's notice, in a second transaction, before the reply goes back. So a `250`
always means "stored, and delivered, queued or held": a crash at any point never
loses an accepted message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, insert, update
from sqlalchemy.exc import IntegrityError

from gatekeeper.config import Settings
from gatekeeper.decision import Decision, Verdict
from gatekeeper.quarantine import Quarantine
from gatekeeper.smtp import status
from gatekeeper.smtp.gatepool import GateOutcome, GatePool, GateRequest, GateUnavailable
from gatekeeper.smtp.headers import HeaderFacts
from gatekeeper.smtp.metrics import RelayMetrics
from gatekeeper.smtp.notices import NoticeWriter
from gatekeeper.smtp.outbound import (
    Doorbell,
    Handoff,
    ItemForDelivery,
    OutboundQueue,
    enqueue,
    record_audit,
)
from gatekeeper.smtp.writer import StoreWriter
from gatekeeper.store.correspondence import Item, ItemContent, ItemState, OutboundKind
from gatekeeper.store.models import utcnow
from gatekeeper.store.sealed import sealed_content, sealed_subject

log = logging.getLogger(__name__)

ITEMS = cast(Table, Item.__table__)
CONTENTS = cast(Table, ItemContent.__table__)

# Built once, so SQLAlchemy compiles each once: these run for every message.
_INSERT_ITEM = insert(ITEMS).returning(ITEMS.c.id)
_INSERT_CONTENT = insert(CONTENTS)
_DECIDE = (
    update(ITEMS)
    .where(ITEMS.c.id == bindparam("item_id"))
    .values(
        {
            name: bindparam(name)
            for name in (
                "state",
                "verdict",
                "enforced_verdict",
                "monitor_only",
                "findings",
                "recipients",
                "case_ids",
                "data_subjects",
                "decided_at",
            )
        }
    )
)

# Crockford's base32: no I, L, O or U, so a ref read out over the phone is not misheard.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REF_LENGTH = 8


def new_ref() -> str:
    """A random reference staff can read and quote: 8 characters, 40 bits."""
    number = secrets.randbits(5 * REF_LENGTH)
    return "".join(_CROCKFORD[(number >> (5 * i)) & 31] for i in range(REF_LENGTH))


@dataclass(frozen=True)
class ClientInfo:
    """Who handed the message over, for the audit trail and the `Received:` header."""

    address: str
    helo: str
    tls: bool
    login: str | None

    @property
    def protocol(self) -> str:
        # RFC 3848 names: ESMTP, ESMTPS (TLS), ESMTPA (AUTH), ESMTPSA (both).
        return "ESMTP" + ("S" if self.tls else "") + ("A" if self.login else "")


@dataclass(frozen=True)
class Submission:
    raw: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]
    sender: str  # the member of staff sending: the AUTH user, or the envelope sender
    team: str | None
    headers: HeaderFacts
    client: ClientInfo
    smtputf8: bool = False
    options: tuple[str, ...] = field(default=())

    def envelope(self) -> dict[str, Any]:
        return {
            "mail_from": self.mail_from,
            "rcpt_to": list(self.rcpt_tos),
            "smtputf8": self.smtputf8,
            "client": {
                "address": self.client.address,
                "helo": self.client.helo,
                "tls": self.client.tls,
                "login": self.client.login,
                "protocol": self.client.protocol,
            },
        }


_STATE_OF = {
    Verdict.RELEASE: ItemState.RELEASED,
    Verdict.HOLD: ItemState.HELD,
    Verdict.BLOCK: ItemState.BLOCKED,
}


class Intake:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        node: str,
        gates: GatePool,
        notices: NoticeWriter,
        metrics: RelayMetrics,
        writer: StoreWriter,
        wake: Doorbell,
        queue: OutboundQueue,
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.settings = settings
        self.node = node
        self.gates = gates
        self.notices = notices
        self.metrics = metrics
        self.writer = writer
        self.wake = wake
        self.lifetime = dt.timedelta(hours=settings.retry_lifetime_hours)
        self.quarantine = Quarantine.for_store(settings, engine)
        self.quarantine.prepare()

    async def receive(self, submission: Submission) -> str:
        """Store, check and decide one message; returns the SMTP reply."""
        started = time.perf_counter()
        # The gate needs only the bytes, so it checks them while they are being written:
        # the reply still waits for both, so a 250 still follows the durable write.
        request = GateRequest(submission.raw, submission.sender, submission.rcpt_tos)
        checking = asyncio.ensure_future(self._checked(request))
        try:
            item_id, ref, received_at = await self._accept(submission)
        except Exception:
            log.exception("could not store a message")
            self.metrics.messages.labels("store_error").inc()
            # Awaited, not dropped: the worker checks it anyway, and its failure is seen here.
            await asyncio.wait([checking])
            if not checking.cancelled():
                checking.exception()  # seen, so asyncio does not report it as lost
            return status.STORE_UNAVAILABLE
        stored = time.perf_counter()
        self.metrics.stages.labels("store").observe(stored - started)
        try:
            outcome, checked = await checking
        except GateUnavailable as exc:
            await self.writer.write(self._defer, item_id, ref, submission, str(exc))
            self.metrics.messages.labels("deferred").inc()
            log.warning("gate gave no decision: %s", exc, extra={"ref": ref})
            return status.reply(status.GATE_UNAVAILABLE, reason=str(exc))
        for stage, seconds in outcome.stages.items():
            self.metrics.stages.labels(stage).observe(seconds)
        # Waiting for a free worker (and the pipe); the write ran alongside.
        self.metrics.stages.labels("wait").observe(
            max(0.0, checked - started - sum(outcome.stages.values()))
        )
        checked = max(checked, stored)
        decision = outcome.decision
        try:
            notice = self._notice(ref, submission, decision)
            handoff = await self.writer.write(
                self._decide,
                item_id,
                ref,
                sub=submission,
                decision=decision,
                notice=notice,
                received_at=received_at,
                in_hand=self.wake.room(len(submission.raw)),
            )
        except Exception:
            log.exception("could not store a decision", extra={"ref": ref})
            self.metrics.messages.labels("store_error").inc()
            return status.STORE_UNAVAILABLE
        finished = time.perf_counter()
        self.metrics.stages.labels("decide").observe(finished - checked)
        self.metrics.latency.observe(finished - started)
        self.metrics.messages.labels(decision.verdict.value).inc()
        if handoff is not None:
            self.wake.hand(handoff)
        elif decision.verdict is Verdict.RELEASE:
            self.wake.set()
        log.info(
            "decided",
            extra={
                "ref": ref,
                "verdict": decision.verdict.value,
                "sender": submission.sender,
                "checks": [f.finding.check for f in decision.findings],
                "ms": round((finished - started) * 1000, 1),
            },
        )
        return _reply(decision, ref)

    async def _checked(self, request: GateRequest) -> tuple[GateOutcome, float]:
        """The gate's outcome, and when it came."""
        outcome = await self.gates.check(request, self.settings.gate_timeout)
        return outcome, time.perf_counter()

    async def _accept(self, submission: Submission) -> tuple[int, str, dt.datetime]:
        """Write the item and its bytes durably; returns (item id, ref, when received)."""
        digest = hashlib.sha256(submission.raw).hexdigest()
        for _ in range(5):
            ref = new_ref()
            received_at = utcnow()
            try:
                item_id = await self.writer.write(
                    self._insert, submission, ref, digest, received_at
                )
            except IntegrityError:
                continue  # a ref already taken (1 in a trillion): draw another
            return item_id, ref, received_at
        raise RuntimeError("could not draw an unused ref")

    def _insert(
        self, conn: Connection, sub: Submission, ref: str, digest: str, received_at: dt.datetime
    ) -> int:
        item_id: int = conn.execute(
            _INSERT_ITEM,
            {
                "ref": ref,
                "channel": "email",
                "sender": sub.sender,
                "team": sub.team,
                **sealed_subject(self.quarantine, ref, sub.headers.subject),
                "envelope": sub.envelope(),
                "recipients": [],
                "case_ids": [],
                "data_subjects": [],
                "findings": [],
                "state": ItemState.RECEIVED.value,
                "monitor_only": False,
                "message_id": sub.headers.message_id,
                "size": len(sub.raw),
                "sha256": digest,
                "received_at": received_at,
                "node": self.node,
            },
        ).scalar_one()
        conn.execute(_INSERT_CONTENT, sealed_content(self.quarantine, item_id, sub.raw))
        return item_id

    def _decide(
        self,
        conn: Connection,
        item_id: int,
        ref: str,
        *,
        sub: Submission,
        decision: Decision,
        notice: bytes | None,
        received_at: dt.datetime,
        in_hand: bool,
    ) -> Handoff | None:
        """Write the decision and what follows from it. A released item's delivery rows come
        back leased to this node, for a delivery worker to take in hand (`in_hand`), or wait
        in the queue for a claim."""
        state = _STATE_OF[decision.verdict]
        findings = [f.as_json() for f in decision.findings]
        enforced = decision.enforced_verdict or decision.verdict
        conn.execute(
            _DECIDE,
            {
                "item_id": item_id,
                "state": state.value,
                "verdict": decision.verdict.value,
                "enforced_verdict": enforced.value,
                "monitor_only": enforced is not decision.verdict,
                "findings": findings,
                "recipients": [r.as_json() for r in decision.recipients],
                "case_ids": list(decision.case_ids),
                "data_subjects": list(decision.data_subjects),
                "decided_at": utcnow(),
            },
        )
        handoff = None
        if state is ItemState.RELEASED and not in_hand:
            enqueue(
                conn,
                kind=OutboundKind.ITEM,
                mail_from=sub.mail_from,
                recipients=sub.rcpt_tos,
                lifetime=self.lifetime,
                item_id=item_id,
            )
        elif state is ItemState.RELEASED:
            item = ItemForDelivery(
                item_id,
                ref,
                state.value,
                sub.headers.subject,
                sub.envelope(),
                received_at,
                self.node,
                sub.raw,
            )
            handoff = self.queue.hand_over(conn, item, sub.mail_from, sub.rcpt_tos)
        if notice is not None:
            enqueue(
                conn,
                kind=OutboundKind.NOTICE,
                mail_from="",
                recipients=[sub.sender],
                lifetime=self.lifetime,
                item_id=item_id,
                raw=notice,
                quarantine=self.quarantine,
            )
        record_audit(
            conn,
            f"relay.{state.value}",
            actor=sub.sender,
            item_id=item_id,
            remote=sub.client.address,
            details={"ref": ref, "checks": [f["check"] for f in findings]},
        )
        return handoff

    def _notice(self, ref: str, sub: Submission, decision: Decision) -> bytes | None:
        """The sender's notice for a held or blocked message (written before the commit)."""
        if decision.verdict is Verdict.RELEASE:
            return None
        write = self.notices.held if decision.verdict is Verdict.HOLD else self.notices.blocked
        return write(
            to=sub.sender,
            ref=ref,
            subject=sub.headers.subject,
            recipients=sub.rcpt_tos,
            findings=[f.as_json() for f in decision.findings],
        )

    def _defer(
        self, conn: Connection, item_id: int, ref: str, sub: Submission, reason: str
    ) -> None:
        conn.execute(
            update(ITEMS)
            .where(ITEMS.c.id == item_id)
            .values(state=ItemState.DEFERRED.value, decided_at=utcnow())
        )
        record_audit(
            conn,
            "relay.deferred",
            actor=sub.sender,
            item_id=item_id,
            remote=sub.client.address,
            details={"ref": ref, "reason": reason},
        )

    def recover(self, conn: Connection) -> int:
        """Items this node was checking when it stopped got no reply: their clients kept them."""
        result = conn.execute(
            update(ITEMS)
            .where(ITEMS.c.state == ItemState.RECEIVED.value, ITEMS.c.node == self.node)
            .values(state=ItemState.DEFERRED.value)
        )
        return result.rowcount


def _reply(decision: Decision, ref: str) -> str:
    if decision.verdict is Verdict.RELEASE:
        return status.reply(status.RELEASED, ref=ref)
    if decision.verdict is Verdict.HOLD:
        return status.reply(status.HELD, ref=ref)
    top = decision.top
    if top is None:
        return status.reply(status.BLOCKED_NO_SUMMARY, ref=ref)
    return status.reply(status.BLOCKED, summary=top.finding.summary, ref=ref)
