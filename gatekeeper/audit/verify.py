"""Checking the audit trail: walk the chain and name each event altered, removed or added.

Every event must hash to its stored hash (else it was *altered*), link to the
one before it (else the one before was rewritten whole, its hash recomputed),
and follow it in number (else events are *missing*). The head row must agree
with the last event (else the end was cut off), and nothing may lie beyond it
(else it was added outside Gatekeeper). What none of this can tell, a head
anchored elsewhere can: one hash `verify` printed before must still be in the
chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, func, select

from gatekeeper.audit.chain import (
    AUDIT,
    GENESIS,
    HEAD,
    HEAD_RESTORED,
    ChainHead,
    StoredEvent,
    read_head,
    utc_text,
)
from gatekeeper.store.correspondence import Item

BATCH = 2000
_COLUMNS = (
    AUDIT.c.seq,
    AUDIT.c.prev_hash,
    AUDIT.c.hash,
    AUDIT.c.at,
    AUDIT.c.actor,
    AUDIT.c.action,
    AUDIT.c.item_id,
    AUDIT.c.details,
    AUDIT.c.remote,
)


@dataclass
class ChainReport:
    """What a walk of the chain found: a line per problem (the first `limit`), and notes."""

    limit: int | None = None
    events: int = 0
    head: ChainHead | None = None
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.problem_count == 0

    @property
    def full(self) -> bool:
        """Further problems are counted, not kept."""
        return self.limit is not None and len(self.problems) >= self.limit

    def problem(self, line: str) -> None:
        self.problem_count += 1
        if not self.full:
            self.problems.append(line)


def verify_chain(
    engine: Engine,
    *,
    anchors: Iterable[str] = (),
    limit: int | None = None,
    batch: int = BATCH,
    advance: Callable[[int], None] = lambda _n: None,
) -> ChainReport:
    """Walk every event up to the head as it stands now; `anchors` are heads printed before."""
    with engine.connect() as conn:
        head = read_head(conn)
        walk = _Walk(conn, ChainReport(limit=limit, head=head), {a.lower() for a in anchors})
        if head is None:
            walk.report.problem(
                "the chain's head (table audit_chain_head) is missing: it was deleted, so events"
                " removed from the end cannot be told"
            )
        cursor: int | None = None
        while True:
            query = select(*_COLUMNS).order_by(AUDIT.c.seq).limit(batch)
            if cursor is not None:
                query = query.where(AUDIT.c.seq > cursor)
            if head is not None:  # events appended while we walk wait for the next run
                query = query.where(AUDIT.c.seq <= head.seq)
            rows = conn.execute(query).all()
            for row in rows:
                walk.step(StoredEvent(**row._mapping))
            advance(len(rows))
            if len(rows) < batch:
                break
            cursor = rows[-1].seq
        walk.finish(head)
    return walk.report


class _Walk:
    def __init__(self, conn: Connection, report: ChainReport, anchors: set[str]) -> None:
        self.conn = conn
        self.report = report
        self.anchors = anchors
        self.expected = 1
        self.last: StoredEvent | None = None
        self.last_sound = True

    def step(self, row: StoredEvent) -> None:
        self.report.events += 1
        problem = self.report.problem
        if row.seq < self.expected:
            problem(f"{describe(row)} is not in the chain: it starts at event 1")
            return
        if row.seq > self.expected:
            problem(_missing(self.expected, row.seq - 1))
        elif row.prev_hash != (self.last.hash if self.last is not None else GENESIS):
            # An event altered with its hash left alone is named by its own hash, below.
            if self.last is None:
                problem(f"{describe(row)} was altered and its hash recomputed: it does not start"
                        " the chain")  # fmt: skip
            elif self.last_sound:
                problem(
                    f"{describe(self.last)} was altered or replaced and its hash recomputed:"
                    f" event {row.seq} was chained to a different one"
                )
        sound = row.recomputed_hash() == row.hash
        if not sound:
            problem(f"{describe(row)} was altered{self._why(row)}")
        if row.hash in self.anchors:
            self.anchors.discard(row.hash)
            self.report.notes.append(f"anchored head {row.hash} is event {row.seq}")
        if row.action == HEAD_RESTORED:
            self.report.notes.append(
                f"{describe(row)}: the chain's head had been deleted and was restored; events"
                " removed from the end before then show only against an anchored head"
            )
        self.expected, self.last, self.last_sound = row.seq + 1, row, sound

    def finish(self, head: ChainHead | None) -> None:
        problem = self.report.problem
        walked = self.expected - 1
        if head is not None:
            if walked < head.seq:
                problem(
                    f"{_missing(walked + 1, head.seq)} from the end (the head is event {head.seq})"
                )
            elif self.last is not None and self.last.hash != head.hash:
                problem(f"the chain's head does not match {describe(self.last)}: one was rewritten")
            elif self.last is None and head.hash != GENESIS:
                problem("the chain's head names an event, but there are none")
            self._beyond_head()
        for anchor in sorted(self.anchors):
            problem(
                f"the anchored head {anchor} is not in the chain: events up to it were"
                " rewritten, or removed from the end"
            )

    def _beyond_head(self) -> None:
        """Events numbered past the head: one statement, so a writer's commit cannot race it."""
        head_seq = select(HEAD.c.seq).where(HEAD.c.id == 1).scalar_subquery()
        first, last, count = self.conn.execute(
            select(func.min(AUDIT.c.seq), func.max(AUDIT.c.seq), func.count()).where(
                AUDIT.c.seq > head_seq
            )
        ).one()
        if count:
            span = f"event {first} is" if count == 1 else f"events {first}–{last} ({count}) are"
            self.report.problem(f"{span} beyond the chain's head: added outside Gatekeeper")

    def _why(self, row: StoredEvent) -> str:
        """A deleted item empties item_id in its events, which reads as an alteration."""
        ref = row.details.get("ref") if isinstance(row.details, dict) else None
        if row.item_id is not None or not isinstance(ref, str) or self.report.full:
            return ""
        kept = self.conn.execute(select(Item.id).where(Item.ref == ref)).first()
        return "" if kept else f" (its item {_plain(ref)} was deleted, which empties item_id)"


def describe(row: StoredEvent) -> str:
    """`event 1234 (held.approve by x@y at 2026-01-02 10:00:00 UTC)`, as the row reads now."""
    who = f" by {_plain(row.actor)}" if row.actor else ""
    when = f"{utc_text(row.at)[:19].replace('T', ' ')} UTC" if row.at else "no time"
    return f"event {row.seq} ({_plain(row.action)}{who} at {when})"


def _missing(first: int, last: int) -> str:
    return f"event {first} is missing" if first == last else f"events {first}–{last} are missing"


def _plain(text: str) -> str:
    """Stored text may be anything; a report line stays one line, and short."""
    return "".join(c if c.isprintable() else "?" for c in text)[:80]
