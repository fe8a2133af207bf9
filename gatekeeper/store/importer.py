"""Loading case-record and staff exports into the store.

Idempotent and in place: a case whose line is unchanged is skipped, a changed
case keeps its row (so anything that refers to it stays valid) and has its
parties rebuilt. Bad lines are rejected with their number and reason; the rest
still loads. Cases are written in batches with bulk inserts, one transaction a
batch, so a million parties load in about a minute with bounded memory.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, insert, select, update

from gatekeeper.contact import email_key
from gatekeeper.record import (
    CaseRecord,
    RecordError,
    StaffRecord,
    parse_case_line,
    parse_staff_line,
)
from gatekeeper.store.bulk import bulk_insert, json_text
from gatekeeper.store.models import (
    Case,
    CaseAlias,
    Party,
    PartyEmail,
    PartyPostalAddress,
    StaffRole,
    StaffUser,
)

CASES = cast(Table, Case.__table__)
ALIASES = cast(Table, CaseAlias.__table__)
PARTIES = cast(Table, Party.__table__)
EMAILS = cast(Table, PartyEmail.__table__)
POSTAL = cast(Table, PartyPostalAddress.__table__)
USERS = cast(Table, StaffUser.__table__)
USER_ROLES = cast(Table, StaffRole.__table__)

# Large enough to amortise round trips, small enough that a batch's memory stays modest.
BATCH_CASES = 2000
# Bound on bind parameters in one IN (...) list; SQLite's limit is 32 766.
_IN_CHUNK = 10_000


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did; `summary()` is the line the command prints at the end."""

    what: str
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def loaded(self) -> int:
        return self.added + self.updated + self.unchanged

    def summary(self) -> str:
        return (
            f"{self.what}: {self.read} lines read, {self.loaded} loaded "
            f"({self.added} added, {self.updated} updated, {self.unchanged} unchanged), "
            f"{len(self.rejected)} rejected in {self.seconds:.1f} s"
        )


Progress = Callable[[int], None]


def _numbered(lines: Iterable[str | bytes]) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        if text.strip():
            yield number, text


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


class _CaseBatchWriter:
    """Writes batches of parsed cases; tracks party ownership across the whole file."""

    def __init__(self, engine: Engine, report: ImportReport) -> None:
        self.engine = engine
        self.report = report
        self.party_owner: dict[str, str] = {}  # party_id -> case_id, for this file
        self.case_line: dict[str, int] = {}
        with engine.connect() as conn:
            self.store_had_parties = conn.execute(select(PARTIES.c.id).limit(1)).first() is not None

    def claim(self, number: int, record: CaseRecord) -> str | None:
        """Reserve the case and its party ids for this line; the reason if they are taken."""
        earlier = self.case_line.get(record.case_id)
        if earlier is not None:
            return f"case {record.case_id} already appears on line {earlier}"
        for party in record.parties:
            owner = self.party_owner.get(party.party_id)
            if owner is not None and owner != record.case_id:
                return f"duplicate party_id {party.party_id!r}: already in case {owner}"
        self.case_line[record.case_id] = number
        for party in record.parties:
            self.party_owner[party.party_id] = record.case_id
        return None

    def release(self, record: CaseRecord) -> None:
        self.case_line.pop(record.case_id, None)
        for party in record.parties:
            if self.party_owner.get(party.party_id) == record.case_id:
                del self.party_owner[party.party_id]

    def write(self, batch: list[tuple[int, CaseRecord]]) -> None:
        with self.engine.begin() as conn:
            batch = self._reject_store_conflicts(conn, batch)
            existing = self._existing(conn, [r.case_id for _, r in batch])
            new: list[CaseRecord] = []
            changed: list[CaseRecord] = []
            for _, record in batch:
                digest = existing.get(record.case_id)
                if digest is None:
                    new.append(record)
                elif digest == record.record_hash:
                    self.report.unchanged += 1
                else:
                    changed.append(record)
            now = dt.datetime.now(dt.UTC)
            if changed:
                self._clear(conn, [r.case_id for r in changed])
                conn.execute(
                    update(CASES).where(CASES.c.case_id == bindparam("key")),
                    [
                        {
                            "key": r.case_id,
                            "status": r.status,
                            "record_hash": r.record_hash,
                            "extra": r.extra,
                            "imported_at": now,
                        }
                        for r in changed
                    ],
                )
            bulk_insert(
                conn,
                CASES,
                ("case_id", "status", "record_hash", "extra", "imported_at"),
                [(r.case_id, r.status, r.record_hash, r.extra, now) for r in new],
            )
            self._insert_contents(conn, new + changed)
            self.report.added += len(new)
            self.report.updated += len(changed)

    def _reject_store_conflicts(
        self, conn: Connection, batch: list[tuple[int, CaseRecord]]
    ) -> list[tuple[int, CaseRecord]]:
        if not self.store_had_parties:
            return batch
        ids = [p.party_id for _, r in batch for p in r.parties]
        owners: dict[str, str] = {}
        for chunk in _chunks(ids):
            rows = conn.execute(
                select(PARTIES.c.party_id, PARTIES.c.case_id).where(PARTIES.c.party_id.in_(chunk))
            )
            owners.update({party_id: case_id for party_id, case_id in rows})
        kept = []
        for number, record in batch:
            clash = next(
                (
                    (p.party_id, owners[p.party_id])
                    for p in record.parties
                    if owners.get(p.party_id, record.case_id) != record.case_id
                    # a case this file also carries is settled by the file's own claims
                    and owners[p.party_id] not in self.case_line
                ),
                None,
            )
            if clash:
                self.release(record)
                self.report.rejected.append(
                    Rejection(
                        number, f"duplicate party_id {clash[0]!r}: already in case {clash[1]}"
                    )
                )
            else:
                kept.append((number, record))
        return kept

    @staticmethod
    def _existing(conn: Connection, case_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(case_ids):
            rows = conn.execute(
                select(CASES.c.case_id, CASES.c.record_hash).where(CASES.c.case_id.in_(chunk))
            )
            found.update({case_id: digest for case_id, digest in rows})
        return found

    @staticmethod
    def _clear(conn: Connection, case_ids: list[str]) -> None:
        for chunk in _chunks(case_ids):
            party_ids = select(PARTIES.c.party_id).where(PARTIES.c.case_id.in_(chunk))
            conn.execute(delete(EMAILS).where(EMAILS.c.party_id.in_(party_ids)))
            conn.execute(delete(POSTAL).where(POSTAL.c.party_id.in_(party_ids)))
            conn.execute(delete(PARTIES).where(PARTIES.c.case_id.in_(chunk)))
            conn.execute(delete(ALIASES).where(ALIASES.c.case_id.in_(chunk)))

    @staticmethod
    def _insert_contents(conn: Connection, records: list[CaseRecord]) -> None:
        bulk_insert(
            conn,
            ALIASES,
            ("case_id", "alias"),
            [(r.case_id, a) for r in records for a in r.aliases],
        )
        parties = [(r.case_id, p) for r in records for p in r.parties]
        bulk_insert(
            conn,
            PARTIES,
            _PARTY_COLUMNS,
            [
                (
                    p.party_id,
                    case_id,
                    p.role,
                    p.name,
                    json_text(list(p.other_names)),
                    p.date_of_birth.isoformat() if p.date_of_birth else None,
                    p.organisation,
                    p.represents,
                    int(p.confidential),
                    json_text(list(p.withheld_from)),
                    int(p.contact_allowed),
                    json_text(p.extra),
                )
                for case_id, p in parties
            ],
            prepared=True,
        )
        bulk_insert(
            conn,
            EMAILS,
            ("party_id", "address", "address_key"),
            [(p.party_id, a, email_key(a)) for _, p in parties for a in p.emails],
            prepared=True,
        )
        bulk_insert(
            conn,
            POSTAL,
            ("party_id", "lines", "postcode"),
            [
                (p.party_id, json_text(list(a.lines)), a.postcode)
                for _, p in parties
                for a in p.postal_addresses
            ],
            prepared=True,
        )


_PARTY_COLUMNS = (
    "party_id", "case_id", "role", "name", "other_names", "date_of_birth", "organisation",
    "represents", "confidential", "withheld_from", "contact_allowed", "extra",
)  # fmt: skip


def import_cases(
    engine: Engine,
    lines: Iterable[str | bytes],
    progress: Progress | None = None,
    batch_size: int = BATCH_CASES,
) -> ImportReport:
    """Load a case export (one JSON case per line). `progress` is told each line's length.

    Parsing runs here while the previous batch is written on a writer thread:
    the database drivers release the GIL while the database works, so the two
    overlap. At most two batches are in flight, which bounds memory.
    """
    report = ImportReport("cases")
    started = time.perf_counter()
    writer = _CaseBatchWriter(engine, report)
    in_flight: deque[Future[None]] = deque()
    batch: list[tuple[int, CaseRecord]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="case-writer") as pool:
        try:
            for number, text in _numbered(_counting(lines, report, progress)):
                try:
                    record = parse_case_line(text)
                except RecordError as exc:
                    report.rejected.append(Rejection(number, str(exc)))
                    continue
                clash = writer.claim(number, record)
                if clash:
                    report.rejected.append(Rejection(number, clash))
                    continue
                batch.append((number, record))
                if len(batch) >= batch_size:
                    in_flight.append(pool.submit(writer.write, batch))
                    batch = []
                    if len(in_flight) >= 2:
                        in_flight.popleft().result()  # a failed write stops the import here
            if batch:
                in_flight.append(pool.submit(writer.write, batch))
            while in_flight:
                in_flight.popleft().result()
        finally:
            for pending in in_flight:
                pending.cancel()
    report.rejected.sort(key=lambda r: r.line)
    report.seconds = time.perf_counter() - started
    return report


def _counting(
    lines: Iterable[str | bytes], report: ImportReport, progress: Progress | None
) -> Iterable[str | bytes]:
    for line in lines:
        report.read += 1
        if progress is not None:
            progress(len(line))
        yield line


def import_staff(
    engine: Engine, lines: Iterable[str | bytes], progress: Progress | None = None
) -> ImportReport:
    """Load a staff export; a known address is updated in place and keeps its password."""
    report = ImportReport("staff")
    started = time.perf_counter()
    seen: dict[str, int] = {}
    records: list[StaffRecord] = []
    for number, text in _numbered(_counting(lines, report, progress)):
        try:
            record = parse_staff_line(text)
        except RecordError as exc:
            report.rejected.append(Rejection(number, str(exc)))
            continue
        key = email_key(record.email)
        if key in seen:
            report.rejected.append(
                Rejection(number, f"{record.email} already appears on line {seen[key]}")
            )
            continue
        seen[key] = number
        records.append(record)
    with engine.begin() as conn:
        existing = {
            row.email_key: row
            for row in conn.execute(
                select(USERS.c.id, USERS.c.email_key, USERS.c.email, USERS.c.name, USERS.c.team)
            )
        }
        roles: dict[int, set[str]] = {}
        for user_pk, role in conn.execute(select(USER_ROLES.c.user_pk, USER_ROLES.c.role)):
            roles.setdefault(user_pk, set()).add(role)
        for record in records:
            key = email_key(record.email)
            row = existing.get(key)
            values = {"email": record.email, "name": record.name, "team": record.team}
            if row is None:
                pk = conn.execute(
                    insert(USERS).returning(USERS.c.id),
                    {**values, "email_key": key, "active": True, "extra": record.extra},
                ).scalar_one()
                conn.execute(insert(USER_ROLES), [{"user_pk": pk, "role": r} for r in record.roles])
                report.added += 1
                continue
            same = (row.email, row.name, row.team) == (record.email, record.name, record.team)
            if same and roles.get(row.id, set()) == set(record.roles):
                report.unchanged += 1
                continue
            conn.execute(
                update(USERS).where(USERS.c.id == row.id).values(**values, extra=record.extra)
            )
            conn.execute(delete(USER_ROLES).where(USER_ROLES.c.user_pk == row.id))
            conn.execute(insert(USER_ROLES), [{"user_pk": row.id, "role": r} for r in record.roles])
            report.updated += 1
    report.rejected.sort(key=lambda r: r.line)
    report.seconds = time.perf_counter() - started
    return report


def count_cases(engine: Engine) -> tuple[int, int]:
    """(cases, parties) in the store."""
    with engine.connect() as conn:
        cases = conn.execute(select(func.count()).select_from(CASES)).scalar_one()
        parties = conn.execute(select(func.count()).select_from(PARTIES)).scalar_one()
    return cases, parties
