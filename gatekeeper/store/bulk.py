"""Bulk row loading through each driver's fastest path: SQLite executemany, PostgreSQL COPY.

SQLAlchemy's per-row parameter processing costs more than the database itself
when a million parties load; these tables are plain enough to feed the driver
directly. Values are converted per column type the way SQLAlchemy stores them,
so rows read back through the ORM exactly as if the ORM had written them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Date, DateTime, Table, insert

Converter = Callable[[Any], Any]


def json_text(value: Any) -> str:
    """A value as the JSON text both databases store for a JSON column."""
    if not value and isinstance(value, list | dict):
        return "[]" if isinstance(value, list) else "{}"  # most parties have no extras
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _sqlite_converter(column_type: Any) -> Converter | None:
    if isinstance(column_type, JSON):
        return json_text
    if isinstance(column_type, Boolean):
        return lambda v: None if v is None else int(v)
    if isinstance(column_type, DateTime):
        # SQLAlchemy's SQLite DateTime storage format: naive, microseconds, space-separated.
        return lambda v: None if v is None else _naive_utc(v).isoformat(" ")
    if isinstance(column_type, Date):
        return lambda v: None if v is None else v.isoformat()
    return None


def _postgres_converter(column_type: Any) -> Converter | None:
    return json_text if isinstance(column_type, JSON) else None


def bulk_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    prepared: bool = False,
) -> None:
    """Insert `rows` (tuples in `columns` order) into `table` inside `conn`'s transaction.

    `prepared=True` says the rows already hold storage values that suit both
    databases (JSON as text, booleans as 0/1, dates as ISO text): the hot path.
    """
    if not rows:
        return
    dialect = conn.dialect.name
    types = [table.c[name].type for name in columns]
    raw = conn.connection.driver_connection
    assert raw is not None, "a connection in a transaction has a driver connection"
    if dialect == "sqlite":
        converters = [None if prepared else _sqlite_converter(t) for t in types]
        converted = _convert(rows, converters)
        placeholders = ", ".join("?" for _ in columns)
        cursor = raw.cursor()
        cursor.executemany(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})", converted
        )
        cursor.close()
        return
    if dialect == "postgresql" and hasattr(raw, "cursor"):
        converters = [None if prepared else _postgres_converter(t) for t in types]
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in _convert(rows, converters):
                copy.write_row(row)
        return
    conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def _convert(
    rows: Sequence[Sequence[Any]], converters: list[Converter | None]
) -> Sequence[Sequence[Any]]:
    if not any(converters):
        return rows
    pairs = list(enumerate(converters))
    return [tuple(c(row[i]) if c is not None else row[i] for i, c in pairs) for row in rows]
