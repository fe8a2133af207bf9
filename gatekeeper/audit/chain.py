"""Appending to the audit trail: every event is a link in one hash chain.

Each event has `seq`, its place in the chain (1, 2, 3, ... with no gaps), the
hash of the event before it (`prev_hash`) and its own `hash`: SHA-256 over the
previous hash and a canonical form of the event's fields. The one-row table
`audit_chain_head` holds the last seq and hash. A writer updates that row first,
which takes its row lock (PostgreSQL) or the database's write lock (SQLite)
until the writer's transaction ends, so any number of processes on any number
of nodes append one after another and the chain never forks.

A writer that commits many jobs in one transaction (the relay's group commit)
asks for its events to be held back (`deferred_audit`) and chains them all just
before its commit: three statements for the group instead of three an event, and
the head row's lock held for the commit alone, not from the group's first event on.

The canonical form is re-derived from what the store gives back, on SQLite and
PostgreSQL alike: `at` in UTC with microseconds, `details` as sorted-key ASCII
JSON after the same round trip the JSON column makes. The row `id` is left out
(a storage detail; `seq` numbers the chain).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gatekeeper.store.correspondence import AuditChainHead, AuditEvent
from gatekeeper.store.models import utcnow

log = logging.getLogger(__name__)

AUDIT = cast(Table, AuditEvent.__table__)
HEAD = cast(Table, AuditChainHead.__table__)

HEAD_ROW = 1
# What the first event links to.
GENESIS = "0" * 64
# Bumped if the canonical form ever changes; verification then needs to know both.
FORMAT = b"gatekeeper-audit-v1\n"
HEAD_RESTORED = "audit.head_restored"


@dataclass(frozen=True)
class ChainHead:
    """The chain's last link: how many events it has and the last one's hash."""

    seq: int
    hash: str


def stored_json(details: dict[str, Any]) -> Any:
    """`details` as the JSON column gives it back (tuples become lists, keys strings)."""
    return json.loads(json.dumps(details))


def utc_text(moment: dt.datetime) -> str:
    """A stored time in one spelling; SQLite gives it back naive, PostgreSQL in its zone."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    at: dt.datetime,
    actor: str | None,
    action: str,
    item_id: int | None,
    details: Any,
    remote: str | None,
) -> str:
    """The hash that links an event to `prev_hash`; `details` as read back from the store."""
    fields = [seq, utc_text(at), action, actor, item_id, remote, details]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(FORMAT + prev_hash.encode() + b"\n" + canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    """An event as the store gives it back now, with the links it claims."""

    seq: int
    prev_hash: str
    hash: str
    at: dt.datetime
    actor: str | None
    action: str
    item_id: int | None
    details: Any
    remote: str | None

    def recomputed_hash(self) -> str:
        """What its hash should be, from its columns as they are now."""
        return event_hash(
            self.prev_hash,
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            item_id=self.item_id,
            details=self.details,
            remote=self.remote,
        )


_ADVANCE = (
    update(HEAD)
    .where(HEAD.c.id == HEAD_ROW)
    .values(seq=HEAD.c.seq + bindparam("count"))
    .returning(HEAD.c.seq, HEAD.c.hash)
)
# Where a connection keeps the events its transaction holds back (`deferred_audit`).
_PENDING = "gatekeeper.audit.pending"


@dataclass(frozen=True)
class _Event:
    action: str
    actor: str | None
    item_id: int | None
    details: Any
    remote: str | None


_INSERT = insert(AUDIT)
_SET_HASH = update(HEAD).where(HEAD.c.id == HEAD_ROW).values(hash=bindparam("head_hash"))


def record_audit(
    conn: Connection,
    action: str,
    *,
    actor: str | None = None,
    item_id: int | None = None,
    details: dict[str, Any] | None = None,
    remote: str | None = None,
) -> None:
    """Append one event to the chain, in the caller's transaction."""
    event = _Event(action, actor, item_id, stored_json(details or {}), remote)
    pending: list[_Event] | None = conn.info.get(_PENDING)
    if pending is not None:
        pending.append(event)
    else:
        _append(conn, [event])


@contextmanager
def deferred_audit(conn: Connection) -> Iterator[None]:
    """Inside a transaction: hold back the events recorded in the block and chain them
    all at its end, so the caller commits right after. An exception drops them."""
    pending: list[_Event] = []
    conn.info[_PENDING] = pending
    try:
        yield
    finally:
        conn.info.pop(_PENDING, None)
    if pending:
        _append(conn, pending)


def _append(conn: Connection, events: list[_Event]) -> None:
    """Link `events`, in order, after the chain's head."""
    count = len(events)
    link = conn.execute(_ADVANCE, {"count": count}).first()
    if link is None:
        _restore_head(conn)
        link = conn.execute(_ADVANCE, {"count": count}).one()
    prev_hash = str(link.hash)
    first = int(link.seq) - count + 1
    # Read the clock once the lock is held, so `at` follows seq on any one node.
    at = utcnow()
    rows = []
    for seq, event in enumerate(events, start=first):
        digest = event_hash(
            prev_hash,
            seq=seq,
            at=at,
            actor=event.actor,
            action=event.action,
            item_id=event.item_id,
            details=event.details,
            remote=event.remote,
        )
        rows.append(
            {
                "seq": seq,
                "prev_hash": prev_hash,
                "hash": digest,
                "at": at,
                "actor": event.actor,
                "action": event.action,
                "item_id": event.item_id,
                "details": event.details,
                "remote": event.remote,
            }
        )
        prev_hash = digest
    conn.execute(_INSERT, rows)
    conn.execute(_SET_HASH, {"head_hash": prev_hash})


def read_head(conn: Connection) -> ChainHead | None:
    row = conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == HEAD_ROW)).first()
    return ChainHead(int(row.seq), str(row.hash)) if row else None


def _restore_head(conn: Connection) -> None:
    """Put back a deleted head row at the last event, and say so in the chain itself."""
    last = conn.execute(
        select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1)
    ).first()
    head = ChainHead(int(last.seq), str(last.hash)) if last else ChainHead(0, GENESIS)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # Another writer may restore it at the same moment: the first one's row stands.
    restored = conn.execute(
        dialect.insert(HEAD)
        .values(id=HEAD_ROW, seq=head.seq, hash=head.hash)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(HEAD.c.id)
    ).first()
    if restored is None:
        return
    log.warning("the audit chain's head row was missing; restored at event %d", head.seq)
    record_audit(conn, HEAD_RESTORED, details={"restored_at": head.seq})
