"""The yearly figures governance reports: the financial year by the London clock, FOI classes,
near misses by cause and category, months, false alarms per check, canaries per checker, and
CSV of every table."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import Engine

from gatekeeper.gate import Gate
from gatekeeper.register import sync_store
from gatekeeper.register.entries import EntryFilter, list_entries
from gatekeeper.register.export import entries_csv, table_csv, tables_csv
from gatekeeper.register.incidents import record_entry
from gatekeeper.register.reports import year_report
from gatekeeper.register.years import FinancialYear, month_of
from tests.register_facts import (
    AUTOCOMPLETE,
    CHECKER,
    CONFIDENTIAL,
    GOVERNANCE,
    LOOKALIKE,
    OTHER_CHECKER,
    build_gate,
    load_record,
    mark_canary,
    queue,
    send,
)

UTC = dt.UTC
# 23:59 on 31 March 2026 in London is 22:59 UTC (BST); 00:00 on 1 April is 23:00 UTC.
LAST_MINUTE = dt.datetime(2026, 3, 31, 22, 59, tzinfo=UTC)
FIRST_MINUTE = dt.datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    return build_gate(tmp_path_factory.mktemp("gate"))


@pytest.fixture
def store(engine: Engine) -> Engine:
    load_record(engine)
    return engine


def incident(engine: Engine, discovered: dt.datetime, **values: object) -> None:
    fields = {
        "kind": "incident",
        "cause": "wrong_attachment",
        "category": "IV",
        "summary": "a report went to the wrong family",
        "discovered_at": discovered,
        **values,
    }
    with engine.begin() as conn:
        record_entry(conn, fields, actor=GOVERNANCE, now=max(NOW, dt.datetime.now(UTC)))


def test_the_year_turns_at_midnight_on_1_april_in_london_not_utc() -> None:
    assert FinancialYear.of(LAST_MINUTE) == FinancialYear(2025)
    assert FinancialYear.of(FIRST_MINUTE) == FinancialYear(2026)
    start, end = FinancialYear(2025).bounds
    assert (start, end) == (
        dt.datetime(2025, 3, 31, 23, 0, tzinfo=UTC),
        dt.datetime(2026, 3, 31, 23, 0, tzinfo=UTC),
    )
    assert FinancialYear(2025).label == "2025-26"
    assert FinancialYear(2025).months()[0] == dt.date(2025, 4, 1)
    assert FinancialYear(2025).months()[-1] == dt.date(2026, 3, 1)
    # Months turn on the local clock too: BST in summer, GMT in winter.
    assert month_of(dt.datetime(2025, 6, 30, 23, 30, tzinfo=UTC)) == dt.date(2025, 7, 1)
    assert month_of(dt.datetime(2025, 10, 31, 23, 30, tzinfo=UTC)) == dt.date(2025, 10, 1)


def test_the_report_counts_each_entry_in_the_year_and_month_of_its_discovery(
    store: Engine, gate: Gate
) -> None:
    send(store, gate, CONFIDENTIAL, at=LAST_MINUTE)  # blocked: a near miss on 31 March
    send(store, gate, CONFIDENTIAL, at=FIRST_MINUTE)  # blocked: a near miss on 1 April
    incident(store, LAST_MINUTE, reportable=True, reported=True, reported_at=LAST_MINUTE)
    incident(store, FIRST_MINUTE)
    incident(store, FIRST_MINUTE, kind="event", cause="other", category="V")
    assert sync_store(store).total == 2
    with store.connect() as conn:
        old, new = year_report(conn, FinancialYear(2025)), year_report(conn, FinancialYear(2026))
    old_summary, new_summary = old.table("summary"), new.table("summary")
    assert old_summary.rows == (
        ("reported to the regulator", 1),
        ("other incidents", 0),
        ("events", 0),
        ("near misses", 1),
        ("total", 2),
    )
    assert new_summary.rows == (
        ("reported to the regulator", 0),
        ("other incidents", 1),
        ("events", 1),
        ("near misses", 1),
        ("total", 3),
    )
    march = old.table("monthly").rows[-1]
    april = new.table("monthly").rows[0]
    assert march == ("2026-03", 1, 0, 0, 1, 2)
    assert april == ("2026-04", 0, 1, 1, 1, 3)
    # The list's date filter agrees: 1 April (London) holds the three new entries.
    day = dt.date(2026, 4, 1)
    with store.connect() as conn:
        assert len(list_entries(conn, EntryFilter(since=day, until=day))) == 3
        assert len(list_entries(conn, EntryFilter(until=dt.date(2026, 3, 31)))) == 2


def test_one_table_answers_near_misses_by_cause_and_category(store: Engine, gate: Gate) -> None:
    send(store, gate, CONFIDENTIAL)
    held = queue(store)
    held.return_to_sender(send(store, gate, LOOKALIKE)[1], CHECKER)
    held.return_to_sender(send(store, gate, AUTOCOMPLETE)[1], CHECKER)
    incident(store, dt.datetime.now(UTC))  # an incident is not a near miss
    sync_store(store)
    with store.connect() as conn:
        report = year_report(conn, FinancialYear.of(dt.datetime.now(UTC)))
    near = report.table("near_misses")
    assert near.cell("confidential address", "category IV") == 1
    assert near.cell("look-alike address", "category IV") == 1
    assert near.cell("autocomplete", "total") == 1
    assert near.cell("wrong attachment", "total") == 0
    assert near.cell("total", "total") == 3
    assert report.table("by_cause").cell("wrong attachment", "other incidents") == 1
    assert report.table("by_team").cell("North", "near misses") == 3
    assert report.table("by_channel").cell("email", "total") == 4
    assert report.table("by_category").cell("IV unauthorised disclosure", "total") == 4


def test_the_false_alarm_rate_of_each_check_counts_approved_holds_and_no_canaries(
    store: Engine, gate: Gate
) -> None:
    held = queue(store)
    when = dt.datetime(2025, 9, 1, 9, 0, tzinfo=UTC)
    approved = [send(store, gate, LOOKALIKE, at=when)[1] for _ in range(3)]
    returned = send(store, gate, LOOKALIKE, at=when)[1]
    expired = send(store, gate, LOOKALIKE, at=when)[1]
    canary_id, canary, _ = send(store, gate, LOOKALIKE, at=when)
    mark_canary(store, canary_id)
    for ref in approved:
        held.approve(ref, CHECKER)
    held.return_to_sender(returned, CHECKER)
    held.expire(expired)
    held.approve(canary, OTHER_CHECKER)
    with store.connect() as conn:
        year = FinancialYear.of(dt.datetime.now(UTC))
        table = year_report(conn, year).table("false_alarms")
        canaries = year_report(conn, year).table("canaries")
    assert table.cell("recipient_lookalike", "held and judged") == 4
    assert table.cell("recipient_lookalike", "approved") == 3
    assert table.cell("recipient_lookalike", "false-alarm rate") == "75.0%"
    assert table.cell("recipient_lookalike", "withdrawn or expired") == 1
    assert canaries.rows == ((OTHER_CHECKER, 0, 1, 0, "0.0%"),)


def test_every_table_and_the_list_export_as_csv_that_parses(store: Engine, gate: Gate) -> None:
    send(store, gate, CONFIDENTIAL)
    incident(store, dt.datetime.now(UTC) - dt.timedelta(hours=1), summary='=HYPERLINK("x")')
    sync_store(store)
    with store.connect() as conn:
        report = year_report(conn, FinancialYear.of(dt.datetime.now(UTC)))
        entries = list_entries(conn)
    for table in report.tables:
        text = table_csv(table)
        assert text.startswith("\ufeff")
        rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
        assert tuple(rows[0]) == table.columns
        assert len(rows) == len(table.rows) + 1
        assert all(
            str(v) == c
            for row, parsed in zip(table.rows, rows[1:], strict=True)
            for v, c in zip(row, parsed, strict=True)
        )
    cells = list(csv.DictReader(io.StringIO(tables_csv(report.tables).removeprefix("\ufeff"))))
    assert {"table": "summary", "row": "near misses", "column": "count", "value": "1"} in cells
    listed = list(csv.DictReader(io.StringIO(entries_csv(entries).removeprefix("\ufeff"))))
    assert [r["ref"] for r in listed] == [e.ref for e in entries]
    # A summary a spreadsheet would run as a formula is kept as text.
    assert any(r["summary"] == '\'=HYPERLINK("x")' for r in listed)
