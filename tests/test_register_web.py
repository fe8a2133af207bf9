"""The register's pages in the real web app on a real store (SQLite and PostgreSQL): who may
see and change what, the incident form and amendments, the year's report with its chart,
subject access, and CSV downloads that parse."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from gatekeeper.config import Settings
from gatekeeper.gate import Gate
from gatekeeper.passwords import hash_password
from gatekeeper.register.entries import list_entries
from gatekeeper.register.years import FinancialYear, local
from gatekeeper.store.staff import set_password
from gatekeeper.web.app import create_app
from tests.register_facts import (
    ADMIN,
    CHECKER,
    CONFIDENTIAL,
    GOVERNANCE,
    LOOKALIKE,
    PASSWORD,
    SENDER,
    STAFF,
    build_gate,
    load_record,
    queue,
    send,
)
from tests.web_world import csrf_of, post_form

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
BASE = "/governance/register"
ROLES = {
    "anonymous": None,
    "staff": SENDER,
    "checker": CHECKER,
    "governance": GOVERNANCE,
    "admin": ADMIN,
}
ALLOWED = {"governance", "admin"}
EVENT = {"kind": "event", "summary": "x", "channel": "post", "cause": "other", "category": "V"}
LAST_YEAR = FinancialYear.of(dt.datetime.now(dt.UTC)).previous()


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    return build_gate(tmp_path_factory.mktemp("gate"))


@pytest.fixture
def app_engine(engine: Engine, gate: Gate) -> Engine:
    """The example record, staff who can sign in, a near miss last year and one this year."""
    load_record(engine)
    hashed = hash_password(PASSWORD)
    for person in STAFF:
        assert set_password(engine, person["email"], hashed)
    last_year = dt.datetime.combine(LAST_YEAR.first_day, dt.time(12), tzinfo=dt.UTC)
    send(engine, gate, CONFIDENTIAL, at=last_year + dt.timedelta(days=40))
    queue(engine).return_to_sender(send(engine, gate, LOOKALIKE)[1], CHECKER, "wrong address")
    return engine


@pytest.fixture
def clients(app_engine: Engine) -> Iterator[dict[str, TestClient]]:
    app = create_app(Settings(internal_domains=("gatekeeper.example",)), app_engine, sweep=False)
    made = {}
    for role, email in ROLES.items():
        client = TestClient(app, follow_redirects=False)
        if email is not None:
            form = {"email": email, "password": PASSWORD, "next": "/"}
            assert post_form(client, "/login", form, page="/login").status_code == 303
        made[role] = client
    yield made
    for client in made.values():
        client.close()


def test_only_governance_and_admin_see_or_change_the_register(
    clients: dict[str, TestClient], app_engine: Engine
) -> None:
    ref = "R-00001"  # the near miss of last year (the pages sync before they show)
    pages = [
        BASE,
        f"{BASE}.csv",
        f"{BASE}/new",
        f"{BASE}/report",
        f"{BASE}/report.csv",
        f"{BASE}/search?q=853206-P2",
        f"{BASE}/search.csv?q=853206-P2",
        f"{BASE}/search.json?q=853206-P2",
        f"{BASE}/{ref}",
        f"{BASE}/{ref}/amend",
    ]
    an_hour_ago = local(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    wrong = []
    for role, client in clients.items():
        token = csrf_of(client.get("/login" if role == "anonymous" else "/mine").text)
        for path in pages:
            status = client.get(path).status_code
            expected = 200 if role in ALLOWED else 303 if role == "anonymous" else 403
            if status != expected:
                wrong.append((role, "GET", path, status))
        for path, form in (
            (f"{BASE}/new", {**EVENT, "discovered_at": an_hour_ago}),
            (f"{BASE}/{ref}/amend", {"summary": "changed", "note": "why"}),
        ):
            status = client.post(path, data={"csrf": token, **form}).status_code
            if (role in ALLOWED) == (status == 403):
                wrong.append((role, "POST", path, status))
    assert wrong == []
    with app_engine.connect() as conn:
        events = [e.recorded_by for e in list_entries(conn) if e.kind == "event"]
    assert sorted(events) == sorted([GOVERNANCE, ADMIN])  # nobody else could record one


def test_the_list_fills_itself_filters_and_downloads_as_csv(
    clients: dict[str, TestClient],
) -> None:
    client = clients["governance"]
    page = client.get(BASE)
    assert page.status_code == 200
    assert page.text.count('class="ref" href="/governance/register/R-') == 2  # synced on view
    assert f"Near misses last financial year ({LAST_YEAR.label})" in page.text
    narrowed = client.get(BASE, params={"cause": "lookalike_address"})
    assert narrowed.text.count('class="ref" href="/governance/register/R-') == 1
    download = client.get(f"{BASE}.csv", params={"cause": "lookalike_address"})
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(download.text.removeprefix("\ufeff"))))
    assert [(r["kind"], r["cause"], r["category"]) for r in rows] == [
        ("near_miss", "lookalike_address", "IV")
    ]


def test_an_incident_is_recorded_shows_its_clock_and_is_amended_with_its_history(
    clients: dict[str, TestClient],
) -> None:
    client = clients["governance"]
    discovered = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    form: dict[str, Any] = {
        "kind": "incident",
        "summary": "A contact schedule reached the wrong family.",
        "channel": "email",
        "cause": "autocomplete",
        "category": "IV",
        "discovered_at": local(discovered).strftime("%Y-%m-%dT%H:%M"),
        "data_subjects": "853206-P1, 853206-P2",
        "data_kinds": ["safeguarding"],
        "reportable": "on",
    }
    refused = post_form(client, f"{BASE}/new", {**form, "summary": ""}, page=f"{BASE}/new")
    assert refused.status_code == 400 and "say what happened" in refused.text
    made = post_form(client, f"{BASE}/new", form, page=f"{BASE}/new")
    assert made.status_code == 303
    where = made.headers["location"].split("?")[0]
    shown = client.get(where).text
    assert "Report to the regulator" in shown and re.search(r"6\d h \d+ min left", shown)
    assert 'data-deadline="' in shown
    amended = post_form(
        client,
        f"{where}/amend",
        {**form, "category": "V", "note": "not a disclosure after all", "from_version": "1"},
        page=f"{where}/amend",
    )
    assert amended.status_code == 303
    history = client.get(where).text
    assert "Version 2" in history and "not a disclosure after all" in history
    stale = post_form(
        client,
        f"{where}/amend",
        {**form, "category": "III", "note": "late", "from_version": "1"},
        page=f"{where}/amend",
    )
    assert stale.status_code == 409 and "reload it" in stale.text


def test_the_report_answers_last_years_near_misses_in_one_click_with_a_chart(
    clients: dict[str, TestClient],
) -> None:
    client = clients["admin"]
    page = client.get(f"{BASE}/report")  # no year: the last financial year
    assert page.status_code == 200
    assert f"Financial year {LAST_YEAR.label}" in page.text
    near = page.text[page.text.index('id="table-near_misses"') :]
    row = re.search(r"<th scope=\"row\">confidential address</th>(.*?)</tr>", near, re.S)
    assert row is not None
    assert re.findall(r">(\d+)</td>", row.group(1)) == ["0", "0", "0", "1", "0", "1"]
    assert '<svg role="img"' in page.text and 'class="trend-bar series-near_miss"' in page.text
    table = client.get(
        f"{BASE}/report.csv", params={"year": LAST_YEAR.start_year, "table": "near_misses"}
    )
    rows = {r["cause"]: r for r in csv.DictReader(io.StringIO(table.text.removeprefix("\ufeff")))}
    assert rows["confidential address"]["category IV"] == "1"


def test_subject_access_search_finds_and_exports(clients: dict[str, TestClient]) -> None:
    client = clients["governance"]
    page = client.get(f"{BASE}/search", params={"q": "Jane Smith"})
    assert page.status_code == 200 and "853206-P2" in page.text
    data = client.get(f"{BASE}/search.json", params={"q": "Jane Smith"}).json()
    assert data["subjects"][0]["party_id"] == "853206-P2" and data["items"]
    cells = list(
        csv.DictReader(
            io.StringIO(
                client.get(f"{BASE}/search.csv", params={"q": "Jane Smith"}).text.removeprefix(
                    "\ufeff"
                )
            )
        )
    )
    assert {
        "table": "subjects",
        "row": "853206-P2",
        "column": "name",
        "value": "Jane Smith",
    } in cells


def test_an_entry_that_does_not_exist_is_a_page_that_says_so(
    clients: dict[str, TestClient],
) -> None:
    client = clients["governance"]
    for path in (f"{BASE}/R-99999", f"{BASE}/nonsense", f"{BASE}/R-99999/amend"):
        missing = client.get(path)
        assert missing.status_code == 404 and "There is no register entry" in missing.text
