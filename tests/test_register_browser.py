"""Governance in a real Chromium against a real `gatekeeper web`: open the register, filter it,
answer last year's near misses by category and cause in one click, see the chart, download
the CSV, and watch a reportable incident's 72-hour clock run out.

Screenshots go to artifacts/screenshots/ (CI keeps that folder).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from gatekeeper.passwords import hash_password
from gatekeeper.register.incidents import record_entry
from gatekeeper.register.years import FinancialYear
from gatekeeper.store import open_store
from gatekeeper.store.staff import set_password
from tests.conftest import REPO, gatekeeper_command, need_program
from tests.register_facts import (
    CHECKER,
    CONFIDENTIAL,
    GOVERNANCE,
    LOOKALIKE,
    PASSWORD,
    STAFF,
    build_gate,
    load_record,
    queue,
    send,
)
from tests.smtp_peers import free_port, port_open, store_url, wait_for

SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAST_YEAR = FinancialYear.of(dt.datetime.now(dt.UTC)).previous()
DISCOVERED = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Engine]]:
    """A store with the example record, staff who sign in, near misses and an incident."""
    folder = tmp_path_factory.mktemp(f"register-{request.param}")
    with store_url(request.param, folder) as url:
        engine = open_store(url)
        load_record(engine)
        hashed = hash_password(PASSWORD)
        for person in STAFF:
            assert set_password(engine, person["email"], hashed)
        gate = build_gate(folder)
        last_year = dt.datetime.combine(LAST_YEAR.first_day, dt.time(12), tzinfo=dt.UTC)
        send(engine, gate, CONFIDENTIAL, at=last_year + dt.timedelta(days=70))
        send(engine, gate, LOOKALIKE, at=last_year + dt.timedelta(days=100))  # held
        queue(engine).return_to_sender(send(engine, gate, LOOKALIKE)[1], CHECKER, "wrong")
        with engine.begin() as conn:
            record_entry(
                conn,
                {
                    "kind": "incident",
                    "summary": "A recipient phoned: a letter about another family reached them.",
                    "channel": "post",
                    "cause": "wrong_envelope",
                    "discovered_at": DISCOVERED,
                    "reportable": True,
                },
                actor=GOVERNANCE,
            )
        yield url, folder, engine
        engine.dispose()


@pytest.fixture(scope="module")
def web(store: tuple[str, Path, Engine]) -> Iterator[str]:
    """`gatekeeper web` as a real subprocess; yields its address."""
    url, folder, _ = store
    port = free_port()
    values = {
        "database_url": url,
        "web_host": "127.0.0.1",
        "web_port": port,
        "web_sweep_seconds": 0,
        "register_sync_seconds": 0,  # the pages sync before they show
        "internal_domains": "gatekeeper.example",
        "node_name": "register-web-test",
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEKEEPER_")},
        "GATEKEEPER_DATA_DIR": str(folder / "data"),
        **{f"GATEKEEPER_{k.upper()}": str(v) for k, v in values.items()},
    }
    log_path = folder / "web.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([*gatekeeper_command(), "web"], env=env, stdout=log, stderr=log)
    address = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the web app exited:\n{log_path.read_text()}")
        if not port_open(port):
            return False
        with urllib.request.urlopen(f"{address}/healthz", timeout=10) as answer:
            return bool(answer.status == 200)

    wait_for(healthy, "the web app to answer /healthz", 120)
    yield address
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, log_path.read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = need_program("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, web: str) -> Iterator[Any]:
    """A browser tab signed in as governance."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    tab.goto(f"{web}/login")
    tab.get_by_label("Email address").fill(GOVERNANCE)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_load_state()
    yield tab
    context.close()


def rows(page: Any) -> Any:
    return page.locator("table.register-list tbody tr:has(a.ref)")


def test_governance_filters_the_register_and_downloads_it_as_csv(page: Any, web: str) -> None:
    page.goto(f"{web}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Breach register").click()
    page.wait_for_url("**/governance/register")
    assert page.get_by_role("heading", name="Near-miss and breach register").is_visible()
    assert rows(page).count() == 3  # two near misses the register recorded itself, an incident
    page.get_by_label("Cause").select_option(label="look-alike address")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**cause=lookalike_address**")
    assert rows(page).count() == 1
    assert "look-alike address" in rows(page).first.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "register-list.png"), full_page=True)

    with page.expect_download() as caught:
        page.get_by_role("link", name="Download these as CSV").click()
    download = caught.value
    assert download.suggested_filename.startswith("register-")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    [entry] = list(csv.DictReader(io.StringIO(text)))
    assert (entry["kind"], entry["cause"], entry["category"], entry["source_kind"]) == (
        "near_miss",
        "lookalike_address",
        "IV",
        "returned",
    )
    assert entry["decided_by"] == CHECKER


def test_one_click_answers_last_years_near_misses_by_category_and_cause_with_a_chart(
    page: Any, web: str
) -> None:
    page.goto(f"{web}/governance/register")
    link = page.get_by_role("link", name=f"Near misses last financial year ({LAST_YEAR.label})")
    link.focus()
    page.keyboard.press("Enter")  # by keyboard, as anyone may
    page.wait_for_url("**/governance/register/report?year=*")
    table = page.locator("#table-near_misses")
    confidential = table.locator(
        "tr", has=page.get_by_role("rowheader", name="confidential address")
    )
    assert confidential.locator("td").all_inner_texts() == ["0", "0", "0", "1", "0", "1"]
    chart = page.locator("svg[data-chart=monthly]")
    assert chart.is_visible()
    bars = chart.locator("rect.trend-bar.series-near_miss")
    assert bars.count() == 1
    box = bars.first.bounding_box()
    assert box is not None and box["height"] > 10
    page.screenshot(path=str(SCREENSHOTS / "register-report.png"), full_page=True)


def test_a_reportable_incidents_clock_counts_down_and_turns_overdue(page: Any, web: str) -> None:
    page.goto(f"{web}/governance/register?kind=incident")
    clock = page.locator(".clock[data-deadline]").first
    assert clock.inner_text().endswith(" left")  # 70 hours to go, as the server drew it
    page.get_by_role("link", name="R-").first.click()
    assert "Report to the regulator" in page.locator("main").inner_text()
    # The page's own clock, three days on: its script turns the countdown overdue.
    page.clock.install(time=DISCOVERED + dt.timedelta(hours=73))
    page.reload()
    overdue = page.locator(".regulator .clock")
    assert overdue.inner_text() == "overdue by 1 h 0 min"
    assert "overdue" in (overdue.get_attribute("class") or "")
