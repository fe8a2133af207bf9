"""Entries people make, and amendments to any entry: every version kept, nothing deleted.

An incident is something that got through (a member of staff or a recipient
reported it); an event cost an investigation without a breach. They carry what
the regulator expects a breach log to hold: what happened, when it happened and
was discovered, the cause, the data and the people affected, the likely
consequences, the mitigation, and whether it was reported to the regulator and
why or why not.

An amendment writes the entry's new state and a new version row with every
field and the reason, in one transaction; it names the version it was made
from, so two people amending at once cannot overwrite each other unseen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update

from gatekeeper.register.causes import Category, Cause, EntryKind, EntrySource
from gatekeeper.register.entries import ENTRIES, VERSIONS, Entry, get_entry, snapshot
from gatekeeper.register.kinds import DataKind
from gatekeeper.smtp.outbound import record_audit
from gatekeeper.store.correspondence import Item
from gatekeeper.store.models import Party, utcnow

CHANNELS = ("email", "post", "other")
# What people may set on an entry they make, and amend on any entry.
AMENDABLE = (
    "kind",
    "channel",
    "cause",
    "category",
    "team",
    "summary",
    "occurred_at",
    "discovered_at",
    "case_ids",
    "data_subjects",
    "people_affected",
    "data_kinds",
    "consequences",
    "mitigation",
    "reporter",
    "reportable",
    "reported",
    "reported_at",
    "regulator_ref",
    "report_reason",
    "item_ref",
)
# On an entry the system made, these are facts of its source: they are not amended.
SOURCE_FACTS = frozenset({"channel", "occurred_at", "discovered_at", "item_ref"})
# A clock a little ahead of the server's is not a discovery in the future.
_CLOCK_SKEW = dt.timedelta(minutes=5)


class RegisterError(Exception):
    """An entry that cannot be made or amended; `problems` maps each field to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in problems.items()))
        self.problems = dict(problems)


class AmendConflict(RegisterError):
    """Somebody amended the entry since the version the amendment was made from."""


def record_entry(
    conn: Connection, values: Mapping[str, Any], *, actor: str, now: dt.datetime | None = None
) -> Entry:
    """Record an incident or event a person reports; returns the entry (version 1)."""
    now = now or utcnow()
    unknown = set(values) - set(AMENDABLE)
    if unknown:
        raise RegisterError({name: "not a field of an entry" for name in sorted(unknown)})
    row: dict[str, Any] = {
        "kind": EntryKind.INCIDENT.value,
        "source_kind": EntrySource.MANUAL.value,
        "source_id": None,
        "channel": "email",
        "cause": Cause.OTHER.value,
        "category": Category.UNAUTHORISED_DISCLOSURE.value,
        "checks": [],
        "team": None,
        "sender": None,
        "decided_by": None,
        "case_ids": [],
        "data_subjects": [],
        "people_affected": None,
        "data_kinds": [],
        "special_categories": [],
        "summary": "",
        "consequences": "",
        "mitigation": "",
        "reporter": "",
        "occurred_at": None,
        "discovered_at": now,
        "reportable": False,
        "reported": False,
        "reported_at": None,
        "regulator_ref": "",
        "report_reason": "",
        "item_ref": None,
        **values,
    }
    _check(conn, row, now)
    row.update(recorded_at=now, recorded_by=actor, version=1)
    entry_id = conn.execute(insert(ENTRIES).values(**row).returning(ENTRIES.c.id)).scalar_one()
    conn.execute(
        insert(VERSIONS).values(
            entry_id=entry_id,
            version=1,
            at=now,
            actor=actor,
            note="recorded",
            changed=[],
            fields=snapshot(row),
        )
    )
    record_audit(
        conn,
        "register.recorded",
        actor=actor,
        item_id=row.get("item_id"),
        details={"entry_id": entry_id, "source": EntrySource.MANUAL.value, "kind": row["kind"]},
    )
    entry = get_entry(conn, entry_id)
    assert entry is not None
    return entry


def amend_entry(
    conn: Connection,
    entry_id: int,
    changes: Mapping[str, Any],
    *,
    actor: str,
    note: str,
    from_version: int | None = None,
    now: dt.datetime | None = None,
) -> Entry:
    """Amend an entry: its new state and a new version row; nothing is overwritten unseen."""
    now = now or utcnow()
    current = get_entry(conn, entry_id)
    if current is None:
        raise RegisterError({"": f"there is no register entry {entry_id}"})
    if from_version is not None and current.version != from_version:
        raise AmendConflict(_conflict(conn, current, from_version))
    unknown = set(changes) - set(AMENDABLE)
    if unknown:
        raise RegisterError({name: "not a field that can be amended" for name in sorted(unknown)})
    fixed = sorted(SOURCE_FACTS & set(changes)) if current.automatic else []
    state = {name: getattr(current, name) for name in AMENDABLE}
    state["item_id"] = current.item_id
    changed = [
        name
        for name, value in changes.items()
        if _comparable(value) != _comparable(state[name]) and name not in fixed
    ]
    if not changed:
        raise RegisterError({"": "nothing changed: the entry already says that"})
    if not note.strip():
        raise RegisterError({"note": "say why it is amended (the reason is kept with the change)"})
    state.update({name: changes[name] for name in changed})
    _check(conn, state, now)
    new_version = current.version + 1
    won = conn.execute(
        update(ENTRIES)
        .where(ENTRIES.c.id == entry_id, ENTRIES.c.version == current.version)
        .values(**{name: state[name] for name in (*changed, "item_id")}, version=new_version)
    ).rowcount
    if won != 1:
        raise AmendConflict(_conflict(conn, current, current.version))
    amended = get_entry(conn, entry_id)
    assert amended is not None
    conn.execute(
        insert(VERSIONS).values(
            entry_id=entry_id,
            version=new_version,
            at=now,
            actor=actor,
            note=note.strip(),
            changed=changed,
            fields=snapshot(_columns(amended)),
        )
    )
    record_audit(
        conn,
        "register.amended",
        actor=actor,
        item_id=amended.item_id,
        details={"entry_id": entry_id, "version": new_version, "changed": changed},
    )
    return amended


def _columns(entry: Entry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in entry.__dataclass_fields__}


def _comparable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _conflict(conn: Connection, current: Entry, seen: int) -> dict[str, str]:
    last = conn.execute(
        select(VERSIONS.c.actor, VERSIONS.c.at)
        .where(VERSIONS.c.entry_id == current.id)
        .order_by(VERSIONS.c.version.desc())
        .limit(1)
    ).first()
    who = f" by {last.actor}" if last else ""
    return {
        "": f"{current.ref} was amended{who} since version {seen} was read: "
        "reload it, then amend again"
    }


def _check(conn: Connection, row: dict[str, Any], now: dt.datetime) -> None:
    """Validate an entry's fields (filling in what follows from them); raise RegisterError."""
    problems: dict[str, str] = {}
    choices: dict[str, tuple[str, ...]] = {
        "kind": tuple(EntryKind),
        "channel": CHANNELS,
        "cause": tuple(Cause),
        "category": tuple(Category),
    }
    for name, allowed in choices.items():
        if row[name] not in allowed:
            problems[name] = f"choose one of: {', '.join(allowed)}"
    row["summary"] = str(row.get("summary") or "").strip()
    if not row["summary"]:
        problems["summary"] = "say what happened"
    discovered = row.get("discovered_at")
    if not isinstance(discovered, dt.datetime):
        problems["discovered_at"] = "when was it discovered?"
    elif discovered > now + _CLOCK_SKEW:
        problems["discovered_at"] = "a discovery cannot be in the future"
    occurred = row.get("occurred_at")
    if (
        isinstance(occurred, dt.datetime)
        and isinstance(discovered, dt.datetime)
        and occurred > discovered
    ):
        problems["occurred_at"] = "it cannot have happened after it was discovered"
    kinds = list(dict.fromkeys(row.get("data_kinds") or ()))
    wrong = [k for k in kinds if k not in set(DataKind)]
    if wrong:
        problems["data_kinds"] = f"unknown kind of data {wrong[0]!r}"
    row["data_kinds"] = [k.value for k in DataKind if k.value in kinds]
    row["data_subjects"] = sorted(set(row.get("data_subjects") or ()))
    row["case_ids"] = list(dict.fromkeys(row.get("case_ids") or ()))
    missing = _unknown_parties(conn, row["data_subjects"])
    if missing:
        problems["data_subjects"] = f"the record has no party {missing[0]!r}"
    people = row.get("people_affected")
    if people is None:
        row["people_affected"] = len(row["data_subjects"])
    elif not isinstance(people, int) or people < len(row["data_subjects"]):
        problems["people_affected"] = "at least as many as the data subjects named"
    _check_reporting(row, problems, now)
    _link_item(conn, row, problems)
    if problems:
        raise RegisterError(problems)


def _check_reporting(row: dict[str, Any], problems: dict[str, str], now: dt.datetime) -> None:
    row["reportable"] = bool(row.get("reportable"))
    row["reported"] = bool(row.get("reported"))
    if row["kind"] != EntryKind.INCIDENT.value and (row["reportable"] or row["reported"]):
        problems["reportable"] = "only an incident is reported to the regulator"
    reported_at = row.get("reported_at")
    if row["reported"] and not isinstance(reported_at, dt.datetime):
        problems["reported_at"] = "when was it reported to the regulator?"
    elif not row["reported"] and reported_at is not None:
        problems["reported_at"] = "it has not been reported: leave this empty"
    elif isinstance(reported_at, dt.datetime):
        discovered = row.get("discovered_at")
        if reported_at > now + _CLOCK_SKEW:
            problems["reported_at"] = "a report cannot be in the future"
        elif isinstance(discovered, dt.datetime) and reported_at < discovered:
            problems["reported_at"] = "it cannot have been reported before it was discovered"
    if row["reported"] and not row["reportable"]:
        row["reportable"] = True  # reported to the regulator, so it was reportable
    for name in ("team", "item_ref"):
        row[name] = str(row.get(name) or "").strip() or None
    for name in ("consequences", "mitigation", "reporter", "regulator_ref", "report_reason"):
        row[name] = str(row.get(name) or "").strip()


def _unknown_parties(conn: Connection, party_ids: list[str]) -> list[str]:
    if not party_ids:
        return []
    known = set(conn.execute(select(Party.party_id).where(Party.party_id.in_(party_ids))).scalars())
    return [p for p in party_ids if p not in known]


def _link_item(conn: Connection, row: dict[str, Any], problems: dict[str, str]) -> None:
    """An entry about an item names it by ref; the link is its id."""
    ref = row.get("item_ref")
    if not ref:
        row["item_id"] = None
        return
    ref = ref.upper()
    row["item_ref"] = ref
    item_id = conn.execute(select(Item.id).where(Item.ref == ref)).scalar()
    if item_id is None:
        problems["item_ref"] = f"there is no item with ref {ref}"
    row["item_id"] = item_id
