"""Reading the register: an entry as it stands, its versions, and the list with its filters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, func, select

from gatekeeper.register.models import RegisterEntry, RegisterVersion
from gatekeeper.register.years import start_of_day

ENTRIES = cast(Table, RegisterEntry.__table__)
VERSIONS = cast(Table, RegisterVersion.__table__)
REF_PREFIX = "R-"


def entry_ref(entry_id: int) -> str:
    """What people quote: `R-00042`."""
    return f"{REF_PREFIX}{entry_id:05d}"


def entry_id_of(ref: str) -> int | None:
    """The id in `R-00042` (or plain `42`); None for anything else."""
    text = ref.strip().upper().removeprefix(REF_PREFIX)
    return int(text) if text.isdigit() else None


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    source_kind: str
    source_id: int | None
    item_id: int | None
    item_ref: str | None
    channel: str
    cause: str
    category: str
    checks: tuple[str, ...]
    team: str | None
    sender: str | None
    decided_by: str | None
    case_ids: tuple[str, ...]
    data_subjects: tuple[str, ...]
    people_affected: int
    data_kinds: tuple[str, ...]
    special_categories: tuple[str, ...]
    summary: str
    consequences: str
    mitigation: str
    reporter: str
    occurred_at: dt.datetime | None
    discovered_at: dt.datetime
    reportable: bool
    reported: bool
    reported_at: dt.datetime | None
    regulator_ref: str
    report_reason: str
    recorded_at: dt.datetime
    recorded_by: str
    version: int

    @classmethod
    def from_row(cls, row: Any) -> Entry:
        values = dict(row._mapping)
        for name in _LISTS:
            values[name] = tuple(values.get(name) or ())
        for name in _MOMENTS:
            values[name] = _aware(values.get(name))
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    @property
    def ref(self) -> str:
        return entry_ref(self.id)

    @property
    def automatic(self) -> bool:
        return self.source_kind != "manual"


_LISTS = ("checks", "case_ids", "data_subjects", "data_kinds", "special_categories")
_MOMENTS = ("occurred_at", "discovered_at", "reported_at", "recorded_at")


def snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's fields as JSON for its version row (moments as ISO 8601 text)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("id", "version"):
            continue
        if isinstance(value, dt.datetime):
            out[name] = (_aware(value) or value).isoformat()
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class Version:
    version: int
    at: dt.datetime
    actor: str
    note: str
    changed: tuple[str, ...]
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class EntryFilter:
    """What the register list is narrowed to; empty means any."""

    kind: str = ""  # near_miss, incident, event, or "reported" (incidents reported)
    channel: str = ""
    cause: str = ""
    category: str = ""
    team: str = ""
    since: dt.date | None = None  # discovered on or after (local date)
    until: dt.date | None = None  # discovered on or before (local date)
    item_ids: Sequence[int] = field(default=())

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.kind == "reported":
            query = query.where(ENTRIES.c.kind == "incident", ENTRIES.c.reported.is_(True))
        elif self.kind:
            query = query.where(ENTRIES.c.kind == self.kind)
        for name in ("channel", "cause", "category", "team"):
            value = getattr(self, name)
            if value:
                query = query.where(ENTRIES.c[name] == value)
        if self.since:
            query = query.where(ENTRIES.c.discovered_at >= start_of_day(self.since))
        if self.until:
            query = query.where(
                ENTRIES.c.discovered_at < start_of_day(self.until + dt.timedelta(days=1))
            )
        if self.item_ids:
            query = query.where(ENTRIES.c.item_id.in_(list(self.item_ids)))
        return query


def list_entries(
    conn: Connection, where: EntryFilter | None = None, *, limit: int | None = None
) -> list[Entry]:
    """Entries newest first (by discovery), narrowed by `where`."""
    query = (where or EntryFilter()).apply(select(ENTRIES))
    query = query.order_by(ENTRIES.c.discovered_at.desc(), ENTRIES.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [Entry.from_row(row) for row in conn.execute(query)]


def count_entries(conn: Connection, where: EntryFilter | None = None) -> int:
    query = (where or EntryFilter()).apply(select(func.count()).select_from(ENTRIES))
    return int(conn.execute(query).scalar_one())


def get_entry(conn: Connection, entry_id: int) -> Entry | None:
    row = conn.execute(select(ENTRIES).where(ENTRIES.c.id == entry_id)).first()
    return Entry.from_row(row) if row else None


def versions_of(conn: Connection, entry_id: int) -> list[Version]:
    """Every version of an entry, the first first."""
    rows = conn.execute(
        select(VERSIONS).where(VERSIONS.c.entry_id == entry_id).order_by(VERSIONS.c.version)
    )
    return [
        Version(
            version=row.version,
            at=_aware(row.at) or row.at,
            actor=row.actor,
            note=row.note or "",
            changed=tuple(row.changed or ()),
            fields=dict(row.fields or {}),
        )
        for row in rows
    ]


def teams_in_register(conn: Connection) -> list[str]:
    """The teams entries name, for the list's filter."""
    query = select(ENTRIES.c.team).where(ENTRIES.c.team.is_not(None)).distinct()
    return sorted(str(t) for t in conn.execute(query).scalars() if t)
