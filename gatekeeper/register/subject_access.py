"""Everything the store holds about one person, for answering a subject access request.

A subject is named by a party id, an email address or a name. Each becomes
the parties it identifies (a name compares as `casebook.name_key` does, with
the other names a party is known by; an email as `contact.email_key` does) and
the addresses to look for; then every item, decision and register entry that
concerns them is listed: as a data subject of an item, a recipient, the
sender, named in a finding, a checker's note or an entry's text.

The store's JSON columns are searched as text first (the same on SQLite and
PostgreSQL), and each candidate is then checked properly here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, Text, func, or_, select
from sqlalchemy import cast as sql_cast

from gatekeeper.casebook import name_key
from gatekeeper.contact import email_key
from gatekeeper.quarantine import Quarantine
from gatekeeper.register.entries import ENTRIES, Entry
from gatekeeper.register.reports import ReportTable
from gatekeeper.smtp.outbound import aware, record_audit
from gatekeeper.store.correspondence import HumanDecision, Item, ItemContent
from gatekeeper.store.models import Party, PartyEmail
from gatekeeper.store.sealed import subject_of

ITEMS = cast(Table, Item.__table__)
DECISIONS = cast(Table, HumanDecision.__table__)
CONTENTS = cast(Table, ItemContent.__table__)
PARTIES = cast(Table, Party.__table__)
PARTY_EMAILS = cast(Table, PartyEmail.__table__)
# A name shorter than this many characters matches too much to be a search.
_MIN_NAME = 3
_ENTRY_TEXTS = ("summary", "consequences", "mitigation", "reporter", "report_reason")


@dataclass(frozen=True)
class Subject:
    party_id: str
    name: str
    case_id: str
    role: str


@dataclass(frozen=True)
class ItemHit:
    id: int
    ref: str
    channel: str
    state: str
    sender: str
    subject: str
    received_at: dt.datetime
    content_kept: bool
    why: tuple[str, ...]


@dataclass(frozen=True)
class DecisionHit:
    item_ref: str
    action: str
    actor: str
    at: dt.datetime
    note: str


@dataclass
class SubjectAccess:
    query: str
    subjects: list[Subject] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    items: list[ItemHit] = field(default_factory=list)
    decisions: list[DecisionHit] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.subjects or self.items or self.decisions or self.entries)

    def tables(self) -> tuple[ReportTable, ...]:
        """The findings as tables, for the page, the CSV files and the command line."""
        return (
            ReportTable(
                "subjects",
                "People in the case record",
                ("party_id", "name", "case_id", "role"),
                tuple((s.party_id, s.name, s.case_id, s.role) for s in self.subjects),
            ),
            ReportTable(
                "items",
                "Items (emails and letters)",
                ("ref", "channel", "state", "sender", "subject", "received_at", "content", "why"),
                tuple(
                    (
                        i.ref,
                        i.channel,
                        i.state,
                        i.sender,
                        i.subject,
                        i.received_at,
                        "kept" if i.content_kept else "purged",
                        list(i.why),
                    )
                    for i in self.items
                ),
            ),
            ReportTable(
                "decisions",
                "Second-check decisions",
                ("item_ref", "action", "actor", "at", "note"),
                tuple((d.item_ref, d.action, d.actor, d.at, d.note) for d in self.decisions),
            ),
            ReportTable(
                "entries",
                "Register entries",
                ("ref", "kind", "cause", "category", "discovered_at", "item_ref", "summary"),
                tuple(
                    (
                        e.ref,
                        e.kind,
                        e.cause,
                        e.category,
                        e.discovered_at,
                        e.item_ref,
                        e.summary,
                    )
                    for e in self.entries
                ),
            ),
        )

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return aware(value).isoformat()
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            return value

        return {
            "query": self.query,
            **{
                table.name: [
                    dict(zip(table.columns, (plain(v) for v in row), strict=True))
                    for row in table.rows
                ]
                for table in self.tables()
            },
        }


def search_subject(conn: Connection, query: str) -> SubjectAccess:
    """Everything that concerns the person `query` names (party id, email address or name)."""
    text = query.strip()
    result = SubjectAccess(query=text)
    if not text:
        return result
    names: list[str] = []
    if "@" in text:
        key = email_key(text)
        result.emails.append(key)
        party_ids = list(
            conn.execute(
                select(PARTY_EMAILS.c.party_id).where(PARTY_EMAILS.c.address_key == key)
            ).scalars()
        )
    else:
        party_ids = list(
            conn.execute(select(PARTIES.c.party_id).where(PARTIES.c.party_id == text)).scalars()
        )
        if not party_ids and len(name_key(text)) >= _MIN_NAME:
            names.append(name_key(text))
            party_ids = _parties_named(conn, name_key(text))
    result.subjects = _subjects(conn, party_ids)
    names.extend(name_key(s.name) for s in result.subjects)
    own = conn.execute(
        select(PARTY_EMAILS.c.address_key).where(PARTY_EMAILS.c.party_id.in_(party_ids))
    ).scalars()
    result.emails = sorted({*result.emails, *own})
    names = list(dict.fromkeys(n for n in names if n))
    result.items = _items(conn, set(party_ids), set(result.emails), names)
    item_ids = [i.id for i in result.items]
    result.decisions = _decisions(conn, item_ids, set(result.emails), names)
    result.entries = _entries(conn, set(party_ids), set(result.emails), names, item_ids)
    return result


def _like(column: Any, needle: str) -> Any:
    """`column`, as lower-case text, contains `needle` (a lower-case JSON-escaped fragment)."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(sql_cast(column, Text)).like(f"%{escaped}%", escape="\\")


def _needle(value: str) -> str:
    """What `value` looks like inside stored JSON text, lower-cased; its longest ASCII run
    when it has other characters (JSON stores them as \\u escapes)."""
    encoded = json.dumps(value.lower())[1:-1]
    if value.isascii():
        return encoded
    runs: list[str] = re.findall(r"[ -~]+", value.lower())
    return max(runs or [""], key=len)


def _parties_named(conn: Connection, key: str) -> list[str]:
    longest = max(key.split(), key=len)
    rows = conn.execute(
        select(PARTIES.c.party_id, PARTIES.c.name, PARTIES.c.other_names).where(
            or_(
                func.lower(PARTIES.c.name).like(f"%{longest}%"),
                _like(PARTIES.c.other_names, _needle(longest)),
            )
        )
    )
    return sorted(
        row.party_id
        for row in rows
        if key in {name_key(n) for n in (row.name, *(row.other_names or ()))}
    )


def _subjects(conn: Connection, party_ids: Iterable[str]) -> list[Subject]:
    ids = sorted(set(party_ids))
    if not ids:
        return []
    rows = conn.execute(
        select(PARTIES.c.party_id, PARTIES.c.name, PARTIES.c.case_id, PARTIES.c.role)
        .where(PARTIES.c.party_id.in_(ids))
        .order_by(PARTIES.c.party_id)
    )
    return [Subject(r.party_id, r.name, r.case_id, r.role) for r in rows]


def _mentions(text: str, names: Iterable[str]) -> bool:
    """Whether `text` names one of `names` (name keys), as whole words."""
    folded = f" {name_key(text)} "
    return any(f" {n} " in folded for n in names)


def _items(
    conn: Connection, party_ids: set[str], emails: set[str], names: list[str]
) -> list[ItemHit]:
    needles = [
        *(_like(ITEMS.c.data_subjects, _needle(p)) for p in party_ids),
        *(_like(ITEMS.c.recipients, _needle(p)) for p in party_ids),
        *(_like(ITEMS.c.recipients, _needle(e)) for e in emails),
        *(_like(ITEMS.c.envelope, _needle(e)) for e in emails),
        *(func.lower(ITEMS.c.sender) == e for e in emails),
        *(_like(ITEMS.c.findings, _needle(n.split()[-1])) for n in names),
    ]
    if not needles:
        return []
    kept = select(CONTENTS.c.item_id).where(CONTENTS.c.item_id == ITEMS.c.id).exists()
    rows = conn.execute(
        select(ITEMS, kept.label("content_kept"))
        .where(or_(*needles))
        .order_by(ITEMS.c.received_at, ITEMS.c.id)
    )
    hits = []
    quarantine = Quarantine.of(conn)
    for row in rows:
        why = _why_item(row, party_ids, emails, names)
        if why:
            hits.append(
                ItemHit(
                    id=row.id,
                    ref=row.ref,
                    channel=row.channel,
                    state=row.state,
                    sender=row.sender or "",
                    subject=subject_of(quarantine, row),
                    received_at=aware(row.received_at),
                    content_kept=bool(row.content_kept),
                    why=tuple(why),
                )
            )
    return hits


def _why_item(row: Any, party_ids: set[str], emails: set[str], names: list[str]) -> list[str]:
    why = []
    if party_ids & set(row.data_subjects or ()):
        why.append("data subject")
    recipients: list[Mapping[str, Any]] = list(row.recipients or ())
    envelope = row.envelope or {}
    addresses = {email_key(str(r.get("address") or "")) for r in recipients}
    addresses.update(email_key(a) for a in envelope.get("rcpt_to") or ())
    if party_ids & {str(r.get("party_id")) for r in recipients} or emails & addresses:
        why.append("recipient")
    if row.sender and email_key(row.sender) in emails:
        why.append("sender")
    if names and any(_mentions(str(f.get("summary", "")), names) for f in row.findings or ()):
        why.append("named in a finding")
    return why


def _decisions(
    conn: Connection, item_ids: list[int], emails: set[str], names: list[str]
) -> list[DecisionHit]:
    conditions: list[Any] = [DECISIONS.c.item_id.in_(item_ids)] if item_ids else []
    conditions += [func.lower(DECISIONS.c.actor) == e for e in emails]
    conditions += [_like(DECISIONS.c.note, n.split()[-1]) for n in names]
    if not conditions:
        return []
    rows = conn.execute(
        select(DECISIONS, ITEMS.c.ref)
        .join(ITEMS, ITEMS.c.id == DECISIONS.c.item_id)
        .where(or_(*conditions))
        .order_by(DECISIONS.c.at)
    )
    wanted = set(item_ids)
    return [
        DecisionHit(r.ref, r.action, r.actor, aware(r.at), r.note or "")
        for r in rows
        if r.item_id in wanted or email_key(r.actor) in emails or _mentions(r.note or "", names)
    ]


def _entries(
    conn: Connection,
    party_ids: set[str],
    emails: set[str],
    names: list[str],
    item_ids: list[int],
) -> list[Entry]:
    conditions = [_like(ENTRIES.c.data_subjects, _needle(p)) for p in party_ids]
    conditions += [func.lower(ENTRIES.c[c]) == e for e in emails for c in ("sender", "decided_by")]
    needles = [*(_needle(e) for e in emails), *(n.split()[-1] for n in names)]
    conditions += [_like(ENTRIES.c[c], n) for n in needles for c in _ENTRY_TEXTS]
    if item_ids:
        conditions.append(ENTRIES.c.item_id.in_(item_ids))
    if not conditions:
        return []
    rows = conn.execute(
        select(ENTRIES).where(or_(*conditions)).order_by(ENTRIES.c.discovered_at, ENTRIES.c.id)
    )
    wanted = set(item_ids)
    out = []
    for row in rows:
        entry = Entry.from_row(row)
        texts = " ".join(getattr(entry, c) for c in _ENTRY_TEXTS)
        if (
            party_ids & set(entry.data_subjects)
            or entry.item_id in wanted
            or {email_key(entry.sender or ""), email_key(entry.decided_by or "")} & emails
            or any(e in texts.lower() for e in emails)
            or _mentions(texts, names)
        ):
            out.append(entry)
    return out


def audit_search(conn: Connection, found: SubjectAccess, *, actor: str) -> None:
    """A subject access search reads about a person: it is audited like opening an item."""
    record_audit(
        conn,
        "register.subject_search",
        actor=actor,
        details={
            "query": found.query,
            "parties": [s.party_id for s in found.subjects],
            "items": len(found.items),
            "decisions": len(found.decisions),
            "entries": len(found.entries),
        },
    )
