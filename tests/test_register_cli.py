"""`gatekeeper register` and `gatekeeper retention` as an administrator or cron runs them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import Engine

from gatekeeper.gate import Gate
from gatekeeper.register.years import FinancialYear
from tests.conftest import run_gatekeeper
from tests.register_facts import (
    CHECKER,
    CONFIDENTIAL,
    LOOKALIKE,
    build_gate,
    load_record,
    queue,
    send,
)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    return build_gate(tmp_path_factory.mktemp("gate"))


def test_sync_report_list_search_and_retention_from_the_command_line(
    database_url: str, engine: Engine, gate: Gate
) -> None:
    load_record(engine)
    blocked = send(engine, gate, CONFIDENTIAL)[1]
    returned = send(engine, gate, LOOKALIKE)[1]
    queue(engine).return_to_sender(returned, CHECKER, "wrong address")
    year = str(FinancialYear.of(dt.datetime.now(dt.UTC)).start_year)

    synced = run_gatekeeper("register", "sync", db=database_url)
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.strip() == "register: 2 new entries (1 blocked, 1 returned)"
    again = run_gatekeeper("register", "sync", db=database_url)
    assert again.stdout.strip() == "register: nothing new"

    report = run_gatekeeper("register", "report", "--year", year, db=database_url)
    assert report.returncode == 0, report.stderr
    assert f"Financial year {year}-" in report.stdout
    assert "Near misses by cause and category" in report.stdout
    lines = report.stdout.splitlines()
    near = lines[lines.index(next(x for x in lines if x.startswith("near misses")))]
    assert near.split()[-1] == "2"

    table = run_gatekeeper(
        "register", "report", "--year", year, "--table", "near_misses", "--csv", db=database_url
    )
    rows = {r["cause"]: r for r in csv.DictReader(io.StringIO(table.stdout))}
    assert rows["confidential address"]["category IV"] == "1"
    assert rows["look-alike address"]["total"] == "1"
    every = run_gatekeeper("register", "report", "--year", year, "--csv", db=database_url)
    cells = list(csv.DictReader(io.StringIO(every.stdout)))
    assert {"table": "summary", "row": "near misses", "column": "count", "value": "2"} in cells
    wrong = run_gatekeeper("register", "report", "--table", "nonsense", db=database_url)
    assert wrong.returncode != 0 and "choose one of: summary" in wrong.stderr

    listed = run_gatekeeper(
        "register", "list", "--cause", "lookalike_address", "--csv", db=database_url
    )
    assert [r["item_ref"] for r in csv.DictReader(io.StringIO(listed.stdout))] == [returned]

    search = run_gatekeeper("register", "search", "853206-P2", "--json", db=database_url)
    assert search.returncode == 0, search.stderr
    found = json.loads(search.stdout)
    assert found["subjects"][0]["name"] == "Jane Smith"
    assert blocked in {i["ref"] for i in found["items"]}

    dry = run_gatekeeper("retention", "run", "--dry-run", db=database_url)
    assert dry.stdout.strip().endswith("would purge the content of 0 items (0 bytes)")
    run = run_gatekeeper("retention", "run", db=database_url)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("retention: purged the content of 0 items decided before ")
