"""What a second check needs to know about a held item besides the item itself.

When the checker first opened it (an audit event, so "how long was it open"
is worked out by the server, never sent by the page); which addresses a
mis-addressed recipient may be corrected to (only verified addresses in the
record); the decision once made; flags for governance; the sender's own items.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gatekeeper.contact import email_key
from gatekeeper.smtp.outbound import aware
from gatekeeper.store.approval import Canary, CanaryOutcome, HeldFlag, HeldItemFlag
from gatekeeper.store.correspondence import AuditEvent, HumanDecision, Item
from gatekeeper.store.models import PartyEmail

AUDIT = cast(Table, AuditEvent.__table__)
DECISIONS = cast(Table, HumanDecision.__table__)
FLAGS = cast(Table, HeldItemFlag.__table__)
CANARIES = cast(Table, Canary.__table__)
ITEMS = cast(Table, Item.__table__)
PARTY_EMAILS = cast(Table, PartyEmail.__table__)

# The audit action of a checker opening an item: the start of "how long it was open".
VIEWED = "held.viewed"
# `jane.smith@example.net (Jane Smith)`, as the checks write what the record expects.
_ADDRESS_FIRST = re.compile(r"^\s*([^\s()<>,;]+@[^\s()<>,;]+)")


@dataclass(frozen=True)
class DecisionRecord:
    """The one decision made on an item: by whom, when, how, and what they confirmed."""

    action: str
    actor: str
    at: dt.datetime
    note: str
    confirmed_findings: tuple[str, ...]
    corrected_recipients: tuple[dict[str, str], ...]
    seconds_open: float | None


def first_view_at(conn: Connection, item_id: int, actor: str) -> dt.datetime | None:
    """When `actor` first opened the item in the approval pages, if they ever did."""
    at = conn.execute(
        select(func.min(AUDIT.c.at)).where(
            AUDIT.c.item_id == item_id,
            AUDIT.c.action == VIEWED,
            func.lower(AUDIT.c.actor) == email_key(actor),
        )
    ).scalar()
    return aware(at) if at is not None else None


def decision_of(conn: Connection, item_id: int) -> DecisionRecord | None:
    row = conn.execute(select(DECISIONS).where(DECISIONS.c.item_id == item_id)).first()
    return _record(row) if row is not None else None


def decisions_of(engine: Engine, item_ids: Iterable[int]) -> dict[int, DecisionRecord]:
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(DECISIONS).where(DECISIONS.c.item_id.in_(ids)))
        return {row.item_id: _record(row) for row in rows}


def _record(row: Any) -> DecisionRecord:
    return DecisionRecord(
        action=row.action,
        actor=row.actor,
        at=aware(row.at),
        note=row.note or "",
        confirmed_findings=tuple(row.confirmed_findings or ()),
        corrected_recipients=tuple(row.corrected_recipients or ()),
        seconds_open=row.seconds_open,
    )


def flag_item(
    conn: Connection, item_id: int, flag: HeldFlag, details: Mapping[str, Any] | None = None
) -> bool:
    """Record a flag once; False when it was there already (another node got there first)."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(FLAGS).values(
                    item_id=item_id, flag=flag.value, at=_now(), details=dict(details or {})
                )
            )
    except IntegrityError:
        return False
    return True


def flags_of(engine: Engine, item_ids: Iterable[int]) -> dict[int, set[str]]:
    ids = sorted(set(item_ids))
    out: dict[int, set[str]] = {i: set() for i in ids}
    if not ids:
        return out
    with engine.connect() as conn:
        for row in conn.execute(
            select(FLAGS.c.item_id, FLAGS.c.flag).where(FLAGS.c.item_id.in_(ids))
        ):
            out[row.item_id].add(row.flag)
    return out


def is_canary(conn: Connection, item_id: int) -> bool:
    found = conn.execute(select(CANARIES.c.item_id).where(CANARIES.c.item_id == item_id)).first()
    return found is not None


def score_canary(conn: Connection, item_id: int, action: str, actor: str | None) -> None:
    """Score a decided canary: approving misses the mistake; returning or correcting catches it."""
    if action == "approve":
        outcome = CanaryOutcome.MISSED
    elif action in ("return", "correct"):
        outcome = CanaryOutcome.CAUGHT
    else:
        outcome, actor = CanaryOutcome.EXPIRED, None
    conn.execute(
        update(CANARIES)
        .where(CANARIES.c.item_id == item_id, CANARIES.c.outcome.is_(None))
        .values(outcome=outcome.value, checker=actor, scored_at=_now())
    )


def address_of(expected: str) -> str | None:
    """The address in one of a finding's `expected` entries, if it names one."""
    found = _ADDRESS_FIRST.match(expected)
    return found.group(1) if found else None


def correction_choices(
    engine: Engine, recipients: Sequence[str], findings: Sequence[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Each envelope recipient a finding is about, with the verified addresses it may become.

    Only addresses the record holds now are offered, so a correction always
    goes to someone the record knows, whatever a page sends back.
    """
    by_key = {email_key(r): r for r in recipients}
    wanted: dict[str, list[str]] = {}
    # The most specific first: one expected address (a look-alike's, a named party's) before
    # a list of everyone in the case.
    for finding in sorted(findings, key=_specificity):
        evidence = finding.get("evidence") or {}
        used = by_key.get(email_key(str(evidence.get("recipient", ""))))
        expected = evidence.get("expected")
        if used is None or not expected:
            continue
        entries = [expected] if isinstance(expected, str) else list(expected)
        for entry in entries:
            address = address_of(str(entry))
            if address and email_key(address) != email_key(used):
                choices = wanted.setdefault(used, [])
                if email_key(address) not in {email_key(c) for c in choices}:
                    choices.append(address)
    if not wanted:
        return {}
    keys = {email_key(a) for choices in wanted.values() for a in choices}
    with engine.connect() as conn:
        verified = set(
            conn.execute(
                select(PARTY_EMAILS.c.address_key).where(PARTY_EMAILS.c.address_key.in_(keys))
            ).scalars()
        )
    offered = {
        used: [a for a in choices if email_key(a) in verified] for used, choices in wanted.items()
    }
    return {used: choices for used, choices in offered.items() if choices}


def _specificity(finding: Mapping[str, Any]) -> int:
    expected = (finding.get("evidence") or {}).get("expected")
    if isinstance(expected, str):
        return 0
    return 1 if isinstance(expected, list) and len(expected) == 1 else 2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
