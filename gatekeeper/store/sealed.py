"""Which columns hold sealed content, and the identity each sealed value is bound to.

Three places hold what staff wrote: `item_contents.raw` (an item's bytes),
`items.sealed_subject` (its subject; `items.subject` keeps only the plaintext
of rows from before encryption, emptied when they are sealed) and
`outbound_messages.raw` (notices and delivery reports, which quote subjects).
Each sealed value is stored with the id of the key that sealed it; a NULL key
id marks a row from before encryption, read as it is until `gatekeeper keys
reseal` seals it. The associated data names the table and the row's identity
that never changes: the item id, the ref, the (kind, item, recipient) of a
queued message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    func,
    or_,
    select,
    update,
)

from gatekeeper.quarantine import Quarantine
from gatekeeper.store.correspondence import Item, ItemContent, OutboundMessage
from gatekeeper.store.letters import Letter

ITEMS = cast(Table, Item.__table__)
CONTENTS = cast(Table, ItemContent.__table__)
OUTBOUND = cast(Table, OutboundMessage.__table__)
LETTERS = cast(Table, Letter.__table__)

# Rows resealed per transaction, and at most this many bytes of content in one.
RESEAL_ROWS = 200
RESEAL_BYTES = 32 * 1024 * 1024


def content_context(item_id: int) -> bytes:
    return f"item_contents.raw:{item_id}".encode()


def subject_context(ref: str) -> bytes:
    return f"items.subject:{ref}".encode()


def outbound_context(kind: str, item_id: int | None, recipient: str) -> bytes:
    return f"outbound_messages.raw:{kind}:{item_id or ''}:{recipient}".encode()


def sealed_content(quarantine: Quarantine, item_id: int, raw: bytes) -> dict[str, Any]:
    """The `item_contents` row for an item's bytes."""
    key_id, sealed = quarantine.seal(raw, content_context(item_id))
    return {"item_id": item_id, "raw": sealed, "key_id": key_id}


def open_content(quarantine: Quarantine, item_id: int, key_id: str | None, raw: bytes) -> bytes:
    if key_id is None:
        return bytes(raw)
    return quarantine.open(key_id, raw, content_context(item_id))


def sealed_subject(quarantine: Quarantine, ref: str, subject: str) -> dict[str, Any]:
    """The `items` values that store a subject (the plaintext column stays empty)."""
    key_id, sealed = quarantine.seal(subject.encode("utf-8"), subject_context(ref))
    return {"subject": "", "sealed_subject": sealed, "subject_key_id": key_id}


def open_subject(
    quarantine: Quarantine,
    ref: str,
    subject: str | None,
    sealed: bytes | None,
    key_id: str | None,
) -> str:
    if key_id is None or sealed is None:
        return subject or ""
    return quarantine.open(key_id, sealed, subject_context(ref)).decode("utf-8")


def subject_of(quarantine: Quarantine, row: Any) -> str:
    """The subject of a row selected with `SUBJECT_COLUMNS` (and the ref)."""
    return open_subject(quarantine, row.ref, row.subject, row.sealed_subject, row.subject_key_id)


SUBJECT_COLUMNS = (ITEMS.c.subject, ITEMS.c.sealed_subject, ITEMS.c.subject_key_id)


def sealed_outbound(
    quarantine: Quarantine, kind: str, item_id: int | None, recipient: str, raw: bytes
) -> tuple[str, bytes]:
    return quarantine.seal(raw, outbound_context(kind, item_id, recipient))


def open_outbound(quarantine: Quarantine, row: Any) -> bytes | None:
    """The bytes of a queued row (selected with kind, item_id, recipient, key_id and raw)."""
    if row.raw is None or row.key_id is None:
        return None if row.raw is None else bytes(row.raw)
    context = outbound_context(row.kind, row.item_id, row.recipient)
    return quarantine.open(row.key_id, row.raw, context)


# -- every sealed column at once: `gatekeeper keys` ------------------------------------------


@dataclass(frozen=True)
class SealedColumn:
    """One table's sealed values: where they are, and how to reseal one row."""

    name: str  # as `keys status` shows it
    table: Table
    key: Any  # the key id column
    value: Any  # the sealed (or, with no key id, plaintext) column
    stored: ColumnElement[bool]  # rows that hold a value at all

    def needing(self, primary: str) -> ColumnElement[bool]:
        """Rows not under the primary key: older keys, and plaintext from before encryption."""
        return and_(self.stored, or_(self.key.is_(None), self.key != primary))


COLUMNS = (
    SealedColumn(
        "items", ITEMS, ITEMS.c.subject_key_id, ITEMS.c.sealed_subject, ITEMS.c.id.is_not(None)
    ),
    SealedColumn(
        "contents", CONTENTS, CONTENTS.c.key_id, CONTENTS.c.raw, CONTENTS.c.raw.is_not(None)
    ),
    SealedColumn(
        "queued", OUTBOUND, OUTBOUND.c.key_id, OUTBOUND.c.raw, OUTBOUND.c.raw.is_not(None)
    ),
)


def rows_per_key(conn: Connection) -> dict[str, Counter[str | None]]:
    """For each sealed column, its rows per key id (None: not sealed yet)."""
    counts: dict[str, Counter[str | None]] = {}
    for column in COLUMNS:
        rows = conn.execute(
            select(column.key, func.count()).where(column.stored).group_by(column.key)
        )
        counts[column.name] = Counter({key: count for key, count in rows})
    return counts


def count_needing(engine: Engine, primary: str) -> int:
    with engine.connect() as conn:
        return sum(
            conn.execute(
                select(func.count()).select_from(c.table).where(c.needing(primary))
            ).scalar_one()
            for c in COLUMNS
        )


def reseal(
    engine: Engine,
    quarantine: Quarantine,
    *,
    progress: Callable[[int], None] = lambda _n: None,
) -> dict[str, int]:
    """Seal every value not under the primary key with it, in batches; counts per column.

    Each batch is a transaction of its own, and each row is rewritten only if its key id is
    still the one read, so the relay and the web app keep working while it runs. On SQLite
    the space the old values took is zeroed and the write-ahead log emptied, so the file
    keeps no plaintext; PostgreSQL keeps old row versions until VACUUM FULL (README).
    """
    primary = quarantine.prepare().primary.key_id
    sqlite = engine.dialect.name == "sqlite"
    done: dict[str, int] = {}
    for column in COLUMNS:
        done[column.name] = 0
        for batch in _batches(engine, column, primary):
            with engine.begin() as conn:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA secure_delete = ON")
                done[column.name] += _RESEAL[column.name](conn, quarantine, batch)
            progress(len(batch))
    if sqlite and any(done.values()):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return done


def _batches(engine: Engine, column: SealedColumn, primary: str) -> Iterator[list[int]]:
    """Ids of the rows to reseal, in id order, cut where a batch would grow too big."""
    ident = column.table.c.id
    size = func.coalesce(func.length(column.value), 0) + (
        func.coalesce(func.length(ITEMS.c.subject), 0) if column.table is ITEMS else 0
    )
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(ident, size)
                .where(column.needing(primary), ident > after)
                .order_by(ident)
                .limit(1000)
            ).all()
        if not rows:
            return
        batch: list[int] = []
        held = 0
        for ident_value, length in rows:
            if batch and (len(batch) >= RESEAL_ROWS or held + (length or 0) > RESEAL_BYTES):
                yield batch
                batch, held = [], 0
            batch.append(ident_value)
            held += length or 0
        yield batch
        after = rows[-1][0]


def _reseal_subjects(conn: Connection, quarantine: Quarantine, ids: list[int]) -> int:
    rows = conn.execute(
        select(ITEMS.c.id, ITEMS.c.ref, ITEMS.c.channel, ITEMS.c.envelope, *SUBJECT_COLUMNS).where(
            ITEMS.c.id.in_(ids)
        )
    ).all()
    done = 0
    for row in rows:
        values = sealed_subject(quarantine, row.ref, subject_of(quarantine, row))
        if row.channel == "post" and row.subject_key_id is None:
            values["envelope"] = _without_print_title(row.envelope)
            conn.execute(update(LETTERS).where(LETTERS.c.item_id == row.id).values(title=""))
        same_key = ITEMS.c.subject_key_id.is_not_distinct_from(row.subject_key_id)
        done += conn.execute(
            update(ITEMS).where(ITEMS.c.id == row.id, same_key).values(values)
        ).rowcount
    return done


def _reseal_contents(conn: Connection, quarantine: Quarantine, ids: list[int]) -> int:
    rows = conn.execute(
        select(CONTENTS.c.id, CONTENTS.c.item_id, CONTENTS.c.key_id, CONTENTS.c.raw).where(
            CONTENTS.c.id.in_(ids)
        )
    ).all()
    done = 0
    for row in rows:
        raw = open_content(quarantine, row.item_id, row.key_id, row.raw)
        values = sealed_content(quarantine, row.item_id, raw)
        done += conn.execute(
            update(CONTENTS)
            .where(CONTENTS.c.id == row.id, CONTENTS.c.key_id.is_not_distinct_from(row.key_id))
            .values(raw=values["raw"], key_id=values["key_id"])
        ).rowcount
    return done


def _reseal_queued(conn: Connection, quarantine: Quarantine, ids: list[int]) -> int:
    rows = conn.execute(
        select(
            OUTBOUND.c.id,
            OUTBOUND.c.kind,
            OUTBOUND.c.item_id,
            OUTBOUND.c.recipient,
            OUTBOUND.c.key_id,
            OUTBOUND.c.raw,
        ).where(OUTBOUND.c.id.in_(ids))
    ).all()
    done = 0
    for r in rows:
        raw = open_outbound(quarantine, r)
        assert raw is not None
        key_id, sealed = sealed_outbound(quarantine, r.kind, r.item_id, r.recipient, raw)
        done += conn.execute(
            update(OUTBOUND)
            .where(OUTBOUND.c.id == r.id, OUTBOUND.c.key_id.is_not_distinct_from(r.key_id))
            .values(raw=sealed, key_id=key_id)
        ).rowcount
    return done


_RESEAL: dict[str, Callable[[Connection, Quarantine, list[int]], int]] = {
    "items": _reseal_subjects,
    "contents": _reseal_contents,
    "queued": _reseal_queued,
}


def _without_print_title(envelope: Any) -> Any:
    """A letter's envelope without the print job's title (often the document's name)."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("print"), dict):
        return envelope
    return {**envelope, "print": {k: v for k, v in envelope["print"].items() if k != "title"}}
