"""How the register fills itself: near-misses derived from facts the store already holds.

Nothing else calls in here when something happens; `sync` looks for source
events that have no entry yet and makes exactly one entry for each:

| source event | entry |
| --- | --- |
| an item in state `blocked` (not a canary) | near miss, `blocked` |
| a decision `return` on a held item (not a canary) | near miss, `returned` |
| a decision `correct` on a held item (not a canary) | near miss, `corrected` |
| a canary a checker approved (outcome `missed`) | near miss, `missed_canary` |
| a scan-station alarm (when the letters' table exists) | near miss, `scan_alarm` |

Not near misses: an approved hold (a false alarm of the checks that fired,
counted by the reports), an expired hold (nobody judged it: no mistake was
confirmed, and the reports count it beside the false alarms), an item its
sender withdrew, and anything released in monitor-only mode (it went out).

The unique (source_kind, source_id) pair makes the insert of an entry another
node made first a no-op, so any number of nodes and cron may sync at once.
Reading and classifying happen before the first write, so on SQLite the write
lock is held only for the inserts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, exists, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from gatekeeper.contact import email_key
from gatekeeper.quarantine import Quarantine
from gatekeeper.register.causes import (
    NEAR_MISS_CATEGORY,
    Cause,
    EntryKind,
    EntrySource,
    acting_checks,
    cause_of,
)
from gatekeeper.register.entries import ENTRIES, VERSIONS, snapshot
from gatekeeper.register.kinds import data_found
from gatekeeper.smtp.outbound import aware, record_audit
from gatekeeper.store.approval import Canary, CanaryOutcome
from gatekeeper.store.correspondence import (
    DecisionAction,
    HumanDecision,
    Item,
    ItemContent,
    ItemState,
)
from gatekeeper.store.letters import ScanAlarm
from gatekeeper.store.models import StaffUser, utcnow
from gatekeeper.store.sealed import open_content

log = logging.getLogger(__name__)

ITEMS = cast(Table, Item.__table__)
CONTENTS = cast(Table, ItemContent.__table__)
DECISIONS = cast(Table, HumanDecision.__table__)
CANARIES = cast(Table, Canary.__table__)
STAFF = cast(Table, StaffUser.__table__)
ALARMS = cast(Table, ScanAlarm.__table__)

# The actor of what the register records by itself.
SYSTEM_ACTOR = "gatekeeper"
# Source events classified per sync: a first sync on a busy store catches up over rounds.
DEFAULT_BATCH = 200
NEAR_MISS_REASON = "A near miss: nothing left the organisation, so nothing to report."


@dataclass
class SyncReport:
    added: Counter[str] = field(default_factory=Counter)  # source kind -> entries made
    more: bool = False  # a batch was full: there may be more to do

    @property
    def total(self) -> int:
        return sum(self.added.values())

    def summary(self) -> str:
        if not self.total:
            return "register: nothing new"
        parts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(self.added.items()))
        return f"register: {self.total} new entries ({parts})"


def sync(conn: Connection, *, batch: int = DEFAULT_BATCH) -> SyncReport:
    """Make the entries for source events that have none yet; returns what was made."""
    report = SyncReport()
    drafts: list[dict[str, Any]] = []
    for source in SOURCES:
        found = list(source(conn, batch))
        report.more = report.more or len(found) >= batch
        drafts.extend(found)
    for draft in drafts:
        if _insert(conn, draft):
            report.added[draft["source_kind"]] += 1
    if report.total:
        log.info("register sync", extra={"added": dict(report.added)})
    return report


def sync_store(engine: Engine, *, batch: int = DEFAULT_BATCH, rounds: int = 1000) -> SyncReport:
    """Sync until nothing is left (each round its own transaction); the total made."""
    total = SyncReport()
    for _ in range(rounds):
        with engine.begin() as conn:
            report = sync(conn, batch=batch)
        total.added.update(report.added)
        if not report.more:
            break
    return total


def _insert(conn: Connection, draft: dict[str, Any]) -> bool:
    """Insert an entry with its first version; False when another sync made it first."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ENTRIES)
        .values(**draft)
        .on_conflict_do_nothing(index_elements=["source_kind", "source_id"])
        .returning(ENTRIES.c.id)
    )
    entry_id = conn.execute(statement).scalar()
    if entry_id is None:
        return False
    conn.execute(
        insert(VERSIONS).values(
            entry_id=entry_id,
            version=1,
            at=draft["recorded_at"],
            actor=SYSTEM_ACTOR,
            note=f"recorded automatically: {EntrySource(draft['source_kind']).label}",
            changed=[],
            fields=snapshot(draft),
        )
    )
    record_audit(
        conn,
        "register.recorded",
        actor=SYSTEM_ACTOR,
        item_id=draft.get("item_id"),
        details={"entry_id": entry_id, "source": draft["source_kind"]},
    )
    return True


# -- the sources ----------------------------------------------------------------------------


def _has_entry(source: EntrySource, source_id: Any) -> Any:
    return exists().where(ENTRIES.c.source_kind == source.value, ENTRIES.c.source_id == source_id)


_NOT_CANARY = ~exists().where(CANARIES.c.item_id == ITEMS.c.id)


def blocked_items(conn: Connection, batch: int) -> Iterator[dict[str, Any]]:
    query = (
        select(ITEMS)
        .where(
            ITEMS.c.state == ItemState.BLOCKED.value,
            _NOT_CANARY,
            ~_has_entry(EntrySource.BLOCKED, ITEMS.c.id),
        )
        .order_by(ITEMS.c.id)
        .limit(batch)
    )
    for item in conn.execute(query).all():
        yield _near_miss(
            conn,
            item,
            source=EntrySource.BLOCKED,
            source_id=item.id,
            discovered_at=item.decided_at or item.received_at,
            acting=acting_checks(item.findings),
            mitigation=f"Blocked by Gatekeeper before it left (ref {item.ref}).",
        )


def checker_catches(conn: Connection, batch: int) -> Iterator[dict[str, Any]]:
    """Held items a checker returned to their sender or corrected to the record's address."""
    for action, source in (
        (DecisionAction.RETURN, EntrySource.RETURNED),
        (DecisionAction.CORRECT, EntrySource.CORRECTED),
    ):
        query = (
            select(
                ITEMS,
                DECISIONS.c.id.label("decision_id"),
                DECISIONS.c.actor.label("decision_actor"),
                DECISIONS.c.at.label("decision_at"),
                DECISIONS.c.note.label("decision_note"),
                DECISIONS.c.confirmed_findings,
                DECISIONS.c.corrected_recipients,
            )
            .join(DECISIONS, DECISIONS.c.item_id == ITEMS.c.id)
            .where(
                DECISIONS.c.action == action.value,
                _NOT_CANARY,
                ~_has_entry(source, DECISIONS.c.id),
            )
            .order_by(DECISIONS.c.id)
            .limit(batch)
        )
        for row in conn.execute(query).all():
            acting = acting_checks(row.findings)
            confirmed = [c for c in acting if c in set(row.confirmed_findings or ())]
            yield _near_miss(
                conn,
                row,
                source=source,
                source_id=row.decision_id,
                discovered_at=row.decision_at,
                acting=confirmed or acting,
                decided_by=row.decision_actor,
                mitigation=_caught_by_checker(row, source),
            )


def _caught_by_checker(row: Any, source: EntrySource) -> str:
    if source is EntrySource.CORRECTED:
        changes = "; ".join(
            f"{c.get('from')} -> {c.get('to')}" for c in row.corrected_recipients or ()
        )
        done = f"Corrected by {row.decision_actor} to the record's address ({changes})"
    else:
        done = f"Returned to the sender unsent by {row.decision_actor}"
    note = f' Note: "{row.decision_note}"' if row.decision_note else ""
    return f"{done}, ref {row.ref}.{note}"


def missed_canaries(conn: Connection, batch: int) -> Iterator[dict[str, Any]]:
    """Canaries a checker approved: the second check let a planted mistake through."""
    query = (
        select(
            ITEMS,
            CANARIES.c.kind.label("canary_kind"),
            CANARIES.c.checker,
            CANARIES.c.scored_at,
        )
        .join(CANARIES, CANARIES.c.item_id == ITEMS.c.id)
        .where(
            CANARIES.c.outcome == CanaryOutcome.MISSED.value,
            ~_has_entry(EntrySource.MISSED_CANARY, CANARIES.c.item_id),
        )
        .order_by(CANARIES.c.item_id)
        .limit(batch)
    )
    for row in conn.execute(query).all():
        checker = row.checker or ""
        acting = acting_checks(row.findings) or [row.canary_kind]
        draft = _near_miss(
            conn,
            row,
            source=EntrySource.MISSED_CANARY,
            source_id=row.id,
            discovered_at=row.scored_at or row.decided_at or row.received_at,
            acting=acting,
            decided_by=checker or None,
            mitigation=(
                "A canary (a planted mistake) is never sent; the miss is for the checker's"
                f" training and the team's figures (ref {row.ref})."
            ),
        )
        # The miss is the checker's, not the name the canary was planted under.
        draft["sender"] = None
        draft["team"] = _team_of(conn, checker) if checker else None
        draft["summary"] = f"A checker approved a canary (a planted mistake): {draft['summary']}"
        yield draft


def scan_alarms(conn: Connection, batch: int) -> Iterator[dict[str, Any]]:
    """The scan station's alarms: a page about to go into the wrong envelope, and the like."""
    query = (
        select(ALARMS)
        .where(~_has_entry(EntrySource.SCAN_ALARM, ALARMS.c.id))
        .order_by(ALARMS.c.id)
        .limit(batch)
    )
    for alarm in conn.execute(query).all():
        # A stray page would have disclosed its own letter's data: that letter is the link.
        about = alarm.other_item_id or alarm.item_id
        item = conn.execute(select(ITEMS).where(ITEMS.c.id == about)).first() if about else None
        envelope = (
            conn.execute(select(ITEMS).where(ITEMS.c.id == alarm.item_id)).first()
            if alarm.item_id
            else None
        )
        mitigation = (
            f"Stopped at the scan station by {alarm.operator} before the envelope was sealed."
        )
        if item is not None:
            draft = _near_miss(
                conn,
                item,
                source=EntrySource.SCAN_ALARM,
                source_id=alarm.id,
                discovered_at=alarm.at,
                acting=[],
                mitigation=mitigation,
                decided_by=alarm.operator,
            )
            draft["occurred_at"] = aware(alarm.at)
        else:
            draft = _without_item(EntrySource.SCAN_ALARM, alarm.id, alarm.at, mitigation)
            draft["decided_by"] = alarm.operator
        draft["channel"] = "post"
        draft["cause"] = _cause_named(alarm.cause, Cause.WRONG_ENVELOPE)
        draft["checks"] = []
        draft["summary"] = alarm.summary or f"scan alarm: {alarm.kind.replace('_', ' ')}"
        if envelope is not None:
            draft["team"], draft["sender"] = envelope.team, envelope.sender
        yield draft


def _cause_named(value: str | None, default: Cause) -> str:
    known = {c.value for c in Cause}
    return value if value in known else default.value


def _team_of(conn: Connection, email: str) -> str | None:
    query = select(STAFF.c.team).where(STAFF.c.email_key == email_key(email))
    team = conn.execute(query).scalar()
    return str(team) if team else None


SourceFunction = Callable[[Connection, int], Iterator[dict[str, Any]]]
SOURCES: tuple[SourceFunction, ...] = (
    blocked_items,
    checker_catches,
    missed_canaries,
    scan_alarms,
)


# -- one near miss from its item ------------------------------------------------------------


def _near_miss(
    conn: Connection,
    item: Any,
    *,
    source: EntrySource,
    source_id: int,
    discovered_at: Any,
    acting: Sequence[str],
    mitigation: str,
    decided_by: str | None = None,
) -> dict[str, Any]:
    """The entry for a near miss about `item`, with the kinds of data its content carries."""
    draft = _without_item(source, source_id, discovered_at, mitigation)
    findings: list[Mapping[str, Any]] = list(item.findings or ())
    fired = list(dict.fromkeys(str(f.get("check")) for f in findings if f.get("check")))
    stored = conn.execute(
        select(CONTENTS.c.raw, CONTENTS.c.key_id).where(CONTENTS.c.item_id == item.id)
    ).first()
    raw = open_content(Quarantine.of(conn), item.id, stored.key_id, stored.raw) if stored else None
    envelope = item.envelope or {}
    found = data_found(
        conn,
        channel=item.channel,
        raw=raw,
        findings=findings,
        recipients=list(item.recipients or ()),
        envelope_recipients=list(envelope.get("rcpt_to") or ()),
    )
    top = next((f for f in findings if f.get("check") in set(acting)), None) or (
        findings[0] if findings else None
    )
    subjects = sorted(set(item.data_subjects or ()))
    draft.update(
        item_id=item.id,
        item_ref=item.ref,
        channel=item.channel,
        cause=cause_of(acting or fired).value,
        checks=fired,
        team=item.team,
        sender=item.sender,
        decided_by=decided_by,
        case_ids=list(item.case_ids or ()),
        data_subjects=subjects,
        people_affected=len(subjects),
        data_kinds=list(found.kinds),
        special_categories=list(found.special_categories),
        summary=str(top.get("summary", "")) if top else f"{source.label} (no findings)",
        occurred_at=aware(item.received_at),
    )
    return draft


def _without_item(
    source: EntrySource, source_id: int, discovered_at: Any, mitigation: str
) -> dict[str, Any]:
    """A near miss with nothing but its source: what `_near_miss` fills in from the item."""
    return {
        "kind": EntryKind.NEAR_MISS.value,
        "source_kind": source.value,
        "source_id": source_id,
        "item_id": None,
        "item_ref": None,
        "channel": "post",
        "cause": Cause.OTHER.value,
        "category": NEAR_MISS_CATEGORY.value,
        "checks": [],
        "team": None,
        "sender": None,
        "decided_by": None,
        "case_ids": [],
        "data_subjects": [],
        "people_affected": 0,
        "data_kinds": [],
        "special_categories": [],
        "summary": "",
        "consequences": "",
        "mitigation": mitigation,
        "reporter": SYSTEM_ACTOR,
        "occurred_at": aware(discovered_at),
        "discovered_at": aware(discovered_at),
        "reportable": False,
        "reported": False,
        "reported_at": None,
        "regulator_ref": "",
        "report_reason": NEAR_MISS_REASON,
        "recorded_at": utcnow(),
        "recorded_by": SYSTEM_ACTOR,
        "version": 1,
    }
