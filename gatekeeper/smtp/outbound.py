"""The outbound queue: durable delivery to the upstream MTA, per recipient, with retry.

Every row is one (message, recipient). A delivery worker claims due rows with a
lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several relay nodes share one
queue), sends each message once to all its claimed recipients over a reused
connection, and records each recipient's own result: a refused recipient fails
alone and its sender gets a delivery report; a deferred one waits with
exponential backoff until the retry lifetime ends, then is reported too. A node
renews its lease while it sends (`delivery_lease_seconds`) and records each
message's result as soon as the upstream answers; one that dies mid-delivery
leaves leased rows that any node takes over once the lease runs out (its own at
once, on restart). Only a message the upstream had just accepted, its result not
yet committed, may then leave twice: the at-least-once window SMTP itself has.

A message the relay releases as it arrives is written already leased to its node
and handed straight to a delivery worker (`Handoff`), which saves a claim and a
read of what the relay has in hand; one that waits in hand too long is put back
for any node to claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import smtplib
import socket
import ssl
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)

from gatekeeper.audit import record_audit as record_audit  # noqa: PLC0414 (re-exported)
from gatekeeper.config import Settings
from gatekeeper.quarantine import Quarantine
from gatekeeper.smtp.metrics import RelayMetrics
from gatekeeper.smtp.notices import NoticeWriter
from gatekeeper.smtp.waitline import WaitLine
from gatekeeper.smtp.writer import StoreWriter
from gatekeeper.store.correspondence import (
    Item,
    ItemContent,
    OutboundKind,
    OutboundMessage,
    OutboundState,
)
from gatekeeper.store.models import utcnow
from gatekeeper.store.sealed import (
    SUBJECT_COLUMNS,
    open_content,
    open_outbound,
    sealed_outbound,
    subject_of,
)

log = logging.getLogger(__name__)

OUTBOUND = cast(Table, OutboundMessage.__table__)
ITEMS = cast(Table, Item.__table__)
CONTENTS = cast(Table, ItemContent.__table__)

BATCH = 50
# Other nodes' and the command line's rows are found by polling; this node's wake it at once.
POLL_SECONDS = 2.0
MAX_RETRY_DELAY = 3600.0
# An idle upstream connection is closed after this long, so the upstream is not hogged.
IDLE_CLOSE_SECONDS = 30.0
UPSTREAM_TIMEOUT = 120.0
# A connection that finished a transaction this recently is used again without an RSET
# round trip first (every transaction ends clean); if it died meanwhile, the message is
# sent once more on a new one.
TRUST_RECENT_SECONDS = 5.0
# Released messages waiting in hand for a delivery worker, at most (a slow upstream must
# not pile them up in memory): past this, they wait in the store's queue instead.
HAND_LIMIT_BYTES = 64 * 1024 * 1024

T = TypeVar("T")


class Doorbell:
    """What wakes the delivery workers: `set()` one idle worker (a released message needs
    one claim, not one by every worker at once), `set_all()` every one (to stop). A ring
    while every worker is busy is kept for the next to come idle. `hand()` leaves a
    message the intake released for the next worker to `take()`, and rings."""

    def __init__(self) -> None:
        self._line = WaitLine()
        self._rung = False
        self._handed: deque[Handoff] = deque()
        self._handed_bytes = 0

    def room(self, size: int) -> bool:
        """Whether a released message of `size` bytes may wait in hand."""
        return self._handed_bytes + size <= HAND_LIMIT_BYTES

    def hand(self, handoff: Handoff) -> None:
        self._handed.append(handoff)
        self._handed_bytes += handoff.size
        self.set()

    def take(self) -> Handoff | None:
        if not self._handed:
            return None
        handoff = self._handed.popleft()
        self._handed_bytes -= handoff.size
        return handoff

    def pending(self) -> bool:
        """Whether a hand-over waits for a worker."""
        return bool(self._handed)

    def left(self) -> list[Handoff]:
        """Every hand-over no worker took (a stopping relay gives them back)."""
        handed = list(self._handed)
        self._handed.clear()
        self._handed_bytes = 0
        return handed

    def set(self) -> None:
        if not self._line.wake_one():
            self._rung = True

    def set_all(self) -> None:
        self._line.wake_all()
        self._rung = True

    async def wait(self, timeout: float) -> None:
        """Until rung, or `timeout` seconds."""
        if self._rung:
            self._rung = False
            return
        waiter = self._line.join()
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            self._line.leave(waiter)


def aware(moment: dt.datetime) -> dt.datetime:
    """A datetime read back from the store, in UTC (SQLite returns it naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


_INSERT_OUTBOUND = insert(OUTBOUND)
_INSERT_LEASED = insert(OUTBOUND).returning(OUTBOUND.c.id, sort_by_parameter_order=True)


def enqueue(
    conn: Connection,
    *,
    kind: OutboundKind,
    mail_from: str,
    recipients: Iterable[str],
    lifetime: dt.timedelta,
    item_id: int | None = None,
    raw: bytes | None = None,
    quarantine: Quarantine | None = None,
) -> int:
    """Queue one message for `recipients` in the caller's transaction; returns the row count.

    `raw` (a notice's own bytes) is sealed for each row, so `quarantine` must come with it.
    """
    if raw is not None and quarantine is None:
        raise TypeError("a message's bytes are sealed before they are stored: pass quarantine")
    now = utcnow()
    rows = [
        {
            "item_id": item_id,
            "kind": kind.value,
            "mail_from": mail_from,
            "recipient": recipient,
            **_sealed_raw(quarantine, kind.value, item_id, recipient, raw),
            "state": OutboundState.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": now + lifetime,
        }
        for recipient in recipients
    ]
    if rows:
        conn.execute(_INSERT_OUTBOUND, rows)
    return len(rows)


def _sealed_raw(
    quarantine: Quarantine | None, kind: str, item_id: int | None, recipient: str, raw: bytes | None
) -> dict[str, Any]:
    if raw is None or quarantine is None:
        return {"raw": None, "key_id": None}
    key_id, sealed = sealed_outbound(quarantine, kind, item_id, recipient, raw)
    return {"raw": sealed, "key_id": key_id}


@dataclass(frozen=True)
class Delivery:
    """One claimed row."""

    id: int
    item_id: int | None
    kind: str
    mail_from: str
    recipient: str
    raw: bytes | None
    attempts: int
    expires_at: dt.datetime


@dataclass(frozen=True)
class ItemForDelivery:
    """What sending an item needs: its bytes and what its trace headers say."""

    id: int
    ref: str
    state: str
    subject: str
    envelope: dict[str, Any]
    received_at: dt.datetime
    node: str | None
    raw: bytes

    def header_block(self) -> bytes:
        end = self.raw.find(b"\r\n\r\n")
        return self.raw[: end + 2] if end >= 0 else self.raw[:8192]


@dataclass(frozen=True)
class Handoff:
    """Rows written leased to this node, with what sending them needs, so that a worker
    sends them without claiming and reading them back."""

    token: str
    deliveries: list[Delivery]
    items: dict[int, ItemForDelivery]
    leased_at: float  # this node's monotonic clock when the lease was written

    @property
    def size(self) -> int:
        return sum(len(item.raw) for item in self.items.values())


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


@dataclass(frozen=True)
class Result:
    delivery: Delivery
    reply: Reply


class UpstreamUnavailable(Exception):
    """The upstream could not be reached or dropped the connection: try again later."""


def trace_headers(item: ItemForDelivery, node: str) -> bytes:
    """`Received:` and the Gatekeeper decision header, prepended to an item's own bytes."""
    client = item.envelope.get("client", {})
    helo = client.get("helo") or "unknown"
    address = client.get("address") or "unknown"
    protocol = client.get("protocol") or "ESMTP"
    received = (
        f"Received: from {helo} ([{address}])\r\n"
        f"\tby {item.node or node} (Gatekeeper) with {protocol} id {item.ref};\r\n"
        f"\t{format_datetime(aware(item.received_at))}\r\n"
    )
    decision = f"X-Gatekeeper-Decision: {item.state}; ref={item.ref}\r\n"
    return (received + decision).encode("utf-8", "replace")


_DUE = or_(
    and_(
        OUTBOUND.c.state == OutboundState.QUEUED.value,
        OUTBOUND.c.next_attempt_at <= bindparam("now"),
    ),
    and_(
        OUTBOUND.c.state == OutboundState.SENDING.value,
        OUTBOUND.c.lease_until < bindparam("now"),
    ),
)
# Built once: the same statement every round, so SQLAlchemy compiles it once.
# The rows to claim are chosen in a CTE, which PostgreSQL runs exactly once. As an
# `IN (subquery)` the planner may rerun the subquery for every row it scans (a nested-loop
# semi-join), each run locking the next rows: one claim then took the whole queue, not
# `limit` rows, and waited on rows other nodes held.
_CLAIMABLE = (
    select(OUTBOUND.c.id)
    .where(_DUE)
    .order_by(OUTBOUND.c.next_attempt_at, OUTBOUND.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)  # other nodes' claims are passed over
    .cte("claimable")
)
_CLAIM = (
    update(OUTBOUND)
    .where(OUTBOUND.c.id == _CLAIMABLE.c.id, _DUE)
    .values(
        state=OutboundState.SENDING.value,
        lease_owner=bindparam("token"),
        lease_until=bindparam("lease_until"),
        attempts=OUTBOUND.c.attempts + 1,
    )
    .returning(
        OUTBOUND.c.id,
        OUTBOUND.c.item_id,
        OUTBOUND.c.kind,
        OUTBOUND.c.mail_from,
        OUTBOUND.c.recipient,
        OUTBOUND.c.raw,
        OUTBOUND.c.key_id,
        OUTBOUND.c.attempts,
        OUTBOUND.c.expires_at,
    )
)
_SETTLE = (
    update(OUTBOUND)
    .where(OUTBOUND.c.id == bindparam("row_id"), OUTBOUND.c.lease_owner == bindparam("token"))
    .values(
        state=bindparam("new_state"),
        lease_owner=None,
        lease_until=None,
        last_error=bindparam("error"),
        next_attempt_at=bindparam("next_at"),
        delivered_at=bindparam("delivered_at"),
    )
)


_LOAD = (
    select(
        ITEMS.c.id,
        ITEMS.c.ref,
        ITEMS.c.state,
        *SUBJECT_COLUMNS,
        ITEMS.c.envelope,
        ITEMS.c.received_at,
        ITEMS.c.node,
        CONTENTS.c.raw,
        CONTENTS.c.key_id,
    )
    .join(CONTENTS, CONTENTS.c.item_id == ITEMS.c.id)
    .where(ITEMS.c.id.in_(bindparam("ids", expanding=True)))
)


class OutboundQueue:
    """The queue's rows in the store: claim, load, record results (all blocking calls)."""

    def __init__(
        self, engine: Engine, settings: Settings, node: str, notices: NoticeWriter
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.node = node
        self.notices = notices
        self.lifetime = dt.timedelta(hours=settings.retry_lifetime_hours)
        self.lease = dt.timedelta(seconds=settings.delivery_lease_seconds)
        self.quarantine = Quarantine.for_store(settings, engine)
        self.quarantine.prepare()

    def recover(self, conn: Connection) -> int:
        """Put back rows this node had leased when it stopped; returns how many."""
        result = conn.execute(
            update(OUTBOUND)
            .where(
                OUTBOUND.c.state == OutboundState.SENDING.value,
                OUTBOUND.c.lease_owner.like(f"{self.node}/%"),
            )
            .values(state=OutboundState.QUEUED.value, lease_owner=None, lease_until=None)
        )
        return result.rowcount

    def _token(self) -> str:
        return f"{self.node}/{uuid.uuid4().hex[:12]}"

    def hand_over(
        self, conn: Connection, item: ItemForDelivery, mail_from: str, recipients: Sequence[str]
    ) -> Handoff | None:
        """Queue an item for `recipients` in the caller's transaction, the rows leased to
        this node as a claim would lease them, for a worker to take in hand."""
        if not recipients:
            return None
        leased_at = time.monotonic()
        now = utcnow()
        token = self._token()
        expires = now + self.lifetime
        rows = [
            {
                "item_id": item.id,
                "kind": OutboundKind.ITEM.value,
                "mail_from": mail_from,
                "recipient": recipient,
                "raw": None,
                "key_id": None,
                "state": OutboundState.SENDING.value,
                "attempts": 1,
                "next_attempt_at": now,
                "expires_at": expires,
                "lease_owner": token,
                "lease_until": now + self.lease,
            }
            for recipient in recipients
        ]
        ids = conn.execute(_INSERT_LEASED, rows).scalars().all()
        deliveries = [
            Delivery(i, item.id, OutboundKind.ITEM.value, mail_from, r, None, 1, expires)
            for i, r in zip(ids, recipients, strict=True)
        ]
        return Handoff(token, deliveries, {item.id: item}, leased_at)

    def claim(self, conn: Connection, limit: int = BATCH) -> tuple[str, list[Delivery]]:
        """Lease up to `limit` due rows to a new token; returns (token, rows)."""
        now = utcnow()
        token = self._token()
        params = {"now": now, "token": token, "lease_until": now + self.lease, "limit": limit}
        rows = conn.execute(_CLAIM, params).all()
        deliveries = [
            Delivery(
                r.id,
                r.item_id,
                r.kind,
                r.mail_from,
                r.recipient,
                open_outbound(self.quarantine, r),
                r.attempts,
                aware(r.expires_at),
            )
            for r in rows
        ]
        deliveries.sort(key=lambda d: d.id)
        return token, deliveries

    def renew(self, conn: Connection, token: str) -> int:
        """Extend the lease of the rows `token` still holds unsent; returns how many it holds."""
        result = conn.execute(
            update(OUTBOUND)
            .where(
                OUTBOUND.c.lease_owner == token,
                OUTBOUND.c.state == OutboundState.SENDING.value,
            )
            .values(lease_until=utcnow() + self.lease)
        )
        return result.rowcount

    def release(self, conn: Connection, token: str) -> int:
        """Put back the rows `token` holds unsent (a stopping node), for any node to claim now."""
        result = conn.execute(
            update(OUTBOUND)
            .where(
                OUTBOUND.c.lease_owner == token,
                OUTBOUND.c.state == OutboundState.SENDING.value,
            )
            # Never tried: the claim's attempt is taken back, so the retry backoff is unchanged.
            .values(
                state=OutboundState.QUEUED.value,
                lease_owner=None,
                lease_until=None,
                attempts=OUTBOUND.c.attempts - 1,
            )
        )
        return result.rowcount

    def claim_items(
        self, conn: Connection, limit: int = BATCH
    ) -> tuple[str, list[Delivery], dict[int, ItemForDelivery]]:
        """`claim`, and what sending the claimed items needs, read in the same transaction."""
        token, deliveries = self.claim(conn, limit)
        ids = [d.item_id for d in deliveries if d.kind == OutboundKind.ITEM.value and d.item_id]
        return token, deliveries, self._items(conn, ids)

    def load_items(self, item_ids: Iterable[int]) -> dict[int, ItemForDelivery]:
        ids = sorted(set(item_ids))
        if not ids:
            return {}
        with self.engine.connect() as conn:
            return self._items(conn, ids)

    def _items(self, conn: Connection, item_ids: Iterable[int]) -> dict[int, ItemForDelivery]:
        ids = sorted(set(item_ids))
        if not ids:
            return {}
        return {
            r.id: ItemForDelivery(
                r.id,
                r.ref,
                r.state,
                subject_of(self.quarantine, r),
                r.envelope,
                aware(r.received_at),
                r.node,
                open_content(self.quarantine, r.id, r.key_id, r.raw),
            )
            for r in conn.execute(_LOAD, {"ids": ids})
        }

    def record(
        self,
        conn: Connection,
        token: str,
        results: Sequence[Result],
        items: dict[int, ItemForDelivery],
    ) -> dict[str, int]:
        """Store each recipient's result; report failures to senders. Returns counts by outcome."""
        now = utcnow()
        counts: dict[str, int] = defaultdict(int)
        reports: dict[tuple[int, bool], list[Result]] = defaultdict(list)
        settled = []
        for result in results:
            d, reply = result.delivery, result.reply
            row = {
                "row_id": d.id,
                "token": token,
                "error": str(reply),
                "next_at": now,
                "delivered_at": None,
            }
            if reply.delivered:
                row.update(new_state=OutboundState.DELIVERED.value, error=None, delivered_at=now)
                outcome = "delivered"
            elif reply.permanent or now >= d.expires_at:
                expired = not reply.permanent
                state = OutboundState.EXPIRED if expired else OutboundState.FAILED
                row["new_state"] = outcome = state.value
                if d.kind == OutboundKind.ITEM.value and d.item_id is not None and d.mail_from:
                    reports[(d.item_id, expired)].append(result)
            else:
                delay = min(self.settings.retry_delay * 2 ** (d.attempts - 1), MAX_RETRY_DELAY)
                row.update(
                    new_state=OutboundState.QUEUED.value, next_at=now + dt.timedelta(seconds=delay)
                )
                outcome = "deferred"
            settled.append(row)
            counts[outcome] += 1
        if settled:
            conn.execute(_SETTLE, settled)
        for (item_id, expired), failed in reports.items():
            self._report(conn, items[item_id], failed, expired)
        return dict(counts)

    def _report(
        self, conn: Connection, item: ItemForDelivery, failed: list[Result], expired: bool
    ) -> None:
        sender = failed[0].delivery.mail_from
        report = self.notices.delivery_report(
            to=sender,
            ref=item.ref,
            subject=item.subject,
            failures=[(r.delivery.recipient, str(r.reply)) for r in failed],
            original_headers=item.header_block(),
            arrival=item.received_at,
            expired=expired,
            upstream=self.settings.upstream_host,
        )
        enqueue(
            conn,
            kind=OutboundKind.DSN,
            mail_from="",
            recipients=[sender],
            lifetime=self.lifetime,
            item_id=item.id,
            raw=report,
            quarantine=self.quarantine,
        )
        record_audit(
            conn,
            "delivery.expired" if expired else "delivery.failed",
            item_id=item.id,
            details={
                "ref": item.ref,
                "recipients": {r.delivery.recipient: str(r.reply) for r in failed},
            },
        )

    def depth(self) -> dict[str, int]:
        """Rows waiting (`queued`) and in flight (`sending`), across every node."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(OUTBOUND.c.state, func.count())
                .where(
                    OUTBOUND.c.state.in_([OutboundState.QUEUED.value, OutboundState.SENDING.value])
                )
                .group_by(OUTBOUND.c.state)
            )
            found = {state: count for state, count in rows}
        return {
            s.value: found.get(s.value, 0) for s in (OutboundState.QUEUED, OutboundState.SENDING)
        }


class UpstreamClient:
    """One SMTP connection to the upstream, reused for message after message (blocking)."""

    def __init__(self, settings: Settings, node: str) -> None:
        self.settings = settings
        self.node = node
        self.smtp: smtplib.SMTP | None = None
        self.last_used = 0.0

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        smtp = smtplib.SMTP(local_hostname=self.node, timeout=UPSTREAM_TIMEOUT)
        try:
            smtp.connect(s.upstream_host, s.upstream_port)
            smtp.ehlo()
            if s.upstream_starttls:
                if not smtp.has_extn("starttls"):
                    raise UpstreamUnavailable("the upstream does not offer STARTTLS")
                context = ssl.create_default_context(cafile=s.upstream_ca_file or None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.upstream_user:
                smtp.login(s.upstream_user, s.upstream_password)
        except BaseException:
            with contextlib.suppress(Exception):
                smtp.close()
            raise
        return smtp

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        """An open connection, and whether it is a recent one used again unchecked."""
        if self.smtp is not None:
            if time.monotonic() - self.last_used < TRUST_RECENT_SECONDS:
                return self.smtp, True
            try:
                code, _ = self.smtp.rset()
                if code == 250:
                    return self.smtp, False
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        self.smtp = self._open()
        return self.smtp, False

    def send(self, mail_from: str, recipients: Sequence[str], data: bytes) -> dict[str, Reply]:
        """Each recipient's reply; raises `UpstreamUnavailable` when no transaction completed."""
        try:
            return self._send(mail_from, recipients, data)
        except UpstreamUnavailable:
            self.close()
            raise
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            self.close()
            raise UpstreamUnavailable(_describe(exc)) from None
        finally:
            self.last_used = time.monotonic()

    def _send(self, mail_from: str, recipients: Sequence[str], data: bytes) -> dict[str, Reply]:
        smtp, unchecked = self._connection()
        options: list[str] = []
        if not (mail_from.isascii() and all(r.isascii() for r in recipients)):
            if not smtp.has_extn("smtputf8"):
                refused = Reply(553, "5.6.7 the upstream does not accept international addresses")
                return dict.fromkeys(recipients, refused)
            options.append("SMTPUTF8")
        if not data.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        try:
            code, text = smtp.mail(mail_from, options)
        except (smtplib.SMTPServerDisconnected, OSError):
            if not unchecked:
                raise
            code = 421
        if code == 421 and unchecked:  # it had closed (or was closing) the connection
            self.close()
            smtp = self.smtp = self._open()
            code, text = smtp.mail(mail_from, options)
        if code != 250:
            smtp.rset()
            return dict.fromkeys(recipients, Reply(code, _text(text)))
        replies: dict[str, Reply] = {}
        for recipient in recipients:
            code, text = smtp.rcpt(recipient)
            replies[recipient] = Reply(code, _text(text))
        accepted = [r for r in recipients if replies[r].code in (250, 251)]
        if not accepted:
            smtp.rset()
            return replies
        try:
            code, answer = smtp.data(data)
            final = Reply(code, _text(answer))
        except smtplib.SMTPResponseException as exc:
            final = Reply(exc.smtp_code, _text(exc.smtp_error))
        for recipient in accepted:
            replies[recipient] = final
        return replies

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(Exception):
                self.smtp.quit()
            with contextlib.suppress(Exception):
                self.smtp.close()
        self.smtp = None

    def idle(self) -> bool:
        """Whether the connection has been open and unused for long enough to close it."""
        return self.smtp is not None and time.monotonic() - self.last_used > IDLE_CLOSE_SECONDS

    def close_if_idle(self) -> None:
        if self.idle():
            self.close()


def _text(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, socket.timeout):
        return "the upstream did not answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "the upstream refused the connection"
    return f"{type(exc).__name__}: {exc}".strip()


def messages_of(
    deliveries: Sequence[Delivery], items: dict[int, ItemForDelivery], node: str
) -> list[tuple[str, list[Delivery], bytes | None]]:
    """Claimed rows grouped into SMTP transactions: (mail_from, rows, bytes to send)."""
    groups: dict[tuple[Any, ...], list[Delivery]] = defaultdict(list)
    for d in deliveries:
        key = (
            ("item", d.item_id, d.mail_from) if d.kind == OutboundKind.ITEM.value else ("own", d.id)
        )
        groups[key].append(d)
    out: list[tuple[str, list[Delivery], bytes | None]] = []
    for rows in groups.values():
        first = rows[0]
        if first.kind == OutboundKind.ITEM.value:
            item = items.get(first.item_id or -1)
            data = trace_headers(item, node) + item.raw if item else None
        else:
            data = first.raw
        out.append((first.mail_from, rows, data))
    return out


class Lease:
    """How long a worker may go on sending a claimed batch, by this node's own clock.

    The claim is renewed every third of its length; a worker whose renewals fail (the
    store out of reach) starts no new transaction once only a third of its last lease is
    left, so it has stopped before any other node may take the rows over.
    """

    def __init__(self, seconds: float, since: float | None = None) -> None:
        self.seconds = seconds
        self.lost = False
        self._until = (time.monotonic() if since is None else since) + seconds

    def renewed(self, asked_at: float) -> None:
        self._until = asked_at + self.seconds

    def held(self) -> bool:
        return not self.lost and time.monotonic() < self._until - self.seconds / 3


class DeliveryWorker:
    """Claims due rows and delivers them over its own upstream connection, until stopped."""

    def __init__(
        self,
        queue: OutboundQueue,
        *,
        writer: StoreWriter,
        store: Executor,
        wake: Doorbell,
        metrics: RelayMetrics,
        number: int,
    ) -> None:
        self.queue = queue
        self.writer = writer
        self.store = store
        self.wake = wake
        self.metrics = metrics
        self.client = UpstreamClient(queue.settings, queue.node)
        # The connection is used from one thread only: smtplib is not thread-safe.
        self.thread = ThreadPoolExecutor(1, thread_name_prefix=f"upstream-{number}")
        self.stopping = False
        self._claim_due = 0.0  # monotonic time of this worker's next claim from the store

    async def _in(self, executor: Executor, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, call, *args)

    async def run(self) -> None:
        while not self.stopping:
            try:
                worked = await self.run_once()
            except Exception:
                log.exception("delivery round failed; retrying shortly")
                worked = False
            if not worked and not self.stopping:
                await self._idle()
        await self._in(self.thread, self.client.close)
        self.thread.shutdown(wait=False)

    async def run_once(self) -> bool:
        """Deliver one batch; False when nothing was due.

        Each message's result is written as soon as the upstream has answered, not after
        the whole batch: a node killed mid-batch leaves to the others, to be sent again,
        only what it had on the wire or not yet recorded, not every message it had sent.
        """
        seconds = self.queue.lease.total_seconds()
        handoff = self.wake.take() if time.monotonic() < self._claim_due else None
        if handoff is not None:
            lease = Lease(seconds, since=handoff.leased_at)
            if not lease.held():  # it waited in hand too long: any node may claim it now
                await self.writer.write(self.queue.release, handoff.token)
                return True
            token, deliveries, items = handoff.token, handoff.deliveries, handoff.items
        else:
            # Claims come at least every POLL_SECONDS, whatever is handed over meanwhile:
            # approved and retried mail waits in the store, not in hand.
            self._claim_due = time.monotonic() + POLL_SECONDS
            lease = Lease(seconds)
            token, deliveries, items = await self.writer.write(self.queue.claim_items)
            if not deliveries:
                return self.wake.pending()
        recorded: list[Future[dict[str, int]]] = []

        def settle(results: list[Result]) -> None:  # called from the upstream thread
            # The next message waits until the one before is recorded: a node that dies
            # leaves at most two per connection sent and unrecorded (that one, and this).
            wait(recorded[-1:], timeout=lease.seconds)
            recorded.append(
                self.writer.submit(lambda conn: self.queue.record(conn, token, results, items))
            )

        keeper = asyncio.create_task(self._keep(token, lease))
        try:
            await self._in(self.thread, self._deliver, deliveries, items, settle, lease)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        failed = None
        for future in recorded:
            try:
                counts = await asyncio.wrap_future(future)
            except Exception as exc:  # the rest are still counted; the round is reported
                failed = exc
                continue
            for outcome, count in counts.items():
                self.metrics.deliveries.labels(outcome).inc(count)
        if failed is not None:
            raise failed
        if self.stopping:  # what this node did not send, any node may send at once
            await self.writer.write(self.queue.release, token)
        return True

    async def _keep(self, token: str, lease: Lease) -> None:
        """Renew the batch's lease every third of its length while the batch is being sent."""
        while True:
            await asyncio.sleep(lease.seconds / 3)
            asked = time.monotonic()
            try:
                held = await self.writer.write(self.queue.renew, token)
            except Exception as exc:
                log.warning("could not renew a delivery lease: %s", exc)
                continue
            if held:
                lease.renewed(asked)
            else:  # all recorded, or taken over by another node: send nothing more of it
                lease.lost = True

    def _deliver(
        self,
        deliveries: Sequence[Delivery],
        items: dict[int, ItemForDelivery],
        settle: Callable[[list[Result]], None],
        lease: Lease,
    ) -> None:
        for mail_from, rows, data in messages_of(deliveries, items, self.queue.node):
            if self.stopping or not lease.held():
                if not self.stopping:
                    log.warning("delivery lease lost; the rest of the batch is left to be claimed")
                return
            if data is None:  # the content was purged: nothing left to send
                gone = Reply(554, "5.6.0 the message content is no longer stored")
                settle([Result(d, gone) for d in rows])
                continue
            try:
                replies = self.client.send(mail_from, [d.recipient for d in rows], data)
            except UpstreamUnavailable as exc:
                log.warning("upstream unavailable: %s", exc, extra={"rows": len(rows)})
                replies = {d.recipient: Reply(451, f"4.4.1 {exc}") for d in rows}
            settle([Result(d, replies[d.recipient]) for d in rows])

    async def _idle(self) -> None:
        await self.wake.wait(POLL_SECONDS)
        if self.client.idle():
            await self._in(self.thread, self.client.close_if_idle)
