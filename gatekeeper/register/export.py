"""CSV of every table governance sees: the register list, each report table, a subject search.

UTF-8 with a byte-order mark, so a spreadsheet opens names with accents right;
lists are joined with "; ", moments are ISO 8601 UTC. A cell a spreadsheet
would run as a formula (starting = + - @) gets a leading apostrophe: a
summary quoting an email must never become a formula on governance's machine.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

from gatekeeper.register.entries import Entry
from gatekeeper.register.reports import ReportTable

BOM = "\ufeff"
ENTRY_COLUMNS = (
    "ref",
    "kind",
    "source_kind",
    "item_ref",
    "channel",
    "cause",
    "category",
    "checks",
    "team",
    "sender",
    "decided_by",
    "case_ids",
    "data_subjects",
    "people_affected",
    "data_kinds",
    "special_categories",
    "summary",
    "consequences",
    "mitigation",
    "reporter",
    "occurred_at",
    "discovered_at",
    "reportable",
    "reported",
    "reported_at",
    "regulator_ref",
    "report_reason",
    "recorded_at",
    "recorded_by",
    "version",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """One value as CSV text (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list | tuple):
        return "; ".join(cell(v) for v in value)
    text = str(value)
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return BOM + out.getvalue()


def entries_csv(entries: Iterable[Entry]) -> str:
    return write_csv(ENTRY_COLUMNS, ([getattr(e, name) for name in ENTRY_COLUMNS] for e in entries))


def table_csv(table: ReportTable) -> str:
    return write_csv(table.columns, table.rows)


def tables_csv(tables: Iterable[ReportTable]) -> str:
    """Several tables in one CSV, one line per cell: table, row, column, value."""

    def cells() -> Iterable[tuple[str, Any, str, Any]]:
        for table in tables:
            for row in table.rows:
                for column, value in zip(table.columns[1:], row[1:], strict=True):
                    yield table.name, row[0], column, value

    return write_csv(("table", "row", "column", "value"), cells())
