"""The scan station in a real Chromium: a complete letter turns green and is dispatched; a page
of another letter alarms and becomes a recorded wrong-envelope near-miss.

Real processes on loopback: `gatekeeper web` on a SQLite store whose letters went through
the real letters desk (gate and stamps), and Chromium driven by Playwright. The operator
"scans" as a barcode scanner does, typing the code and Enter into the focused field, and
also uploads a photo of a printed page (rendered with pdftoppm), decoded on the server.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from gatekeeper.config import Settings
from gatekeeper.gate import Gate
from gatekeeper.passwords import hash_password
from gatekeeper.post.intake import LetterIntake
from gatekeeper.post.pagecode import PageCode
from gatekeeper.post.printjob import Action, PrintJob
from gatekeeper.store import open_store
from gatekeeper.store.correspondence import Item
from gatekeeper.store.importer import import_cases, import_staff
from gatekeeper.store.letters import Letter, ScanAlarm
from gatekeeper.store.staff import set_password
from tests.conftest import REPO, gatekeeper_command, need_program, run_gatekeeper
from tests.cups_peers import free_port, wait_for
from tests.letters import JANE, MARK, letter_pdf
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF
from tests.test_web_browser import CHROMIUM_ARGS

pytestmark = pytest.mark.slow

OPERATOR = "a.jones@gatekeeper.example"  # role staff
PASSWORD = "correct horse battery staple"
SCREENSHOTS = REPO / "artifacts" / "screenshots"


@dataclass
class PostRoom:
    engine: Engine
    url: str
    letters: dict[str, tuple[str, bytes]]  # name -> (ref, stamped PDF)
    folder: Path


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostRoom]:
    folder = tmp_path_factory.mktemp("postroom")
    db = f"sqlite:///{folder / 'gk.db'}"
    engine = open_store(db)
    assert not import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in STAFF]).rejected
    assert set_password(engine, OPERATOR, hash_password(PASSWORD))
    settings = Settings(internal_domains=("gatekeeper.example",))
    desk = LetterIntake(engine, settings, check=Gate.from_store(engine, settings).check, node="t")
    letters = {}
    for number, (name, pdf) in enumerate(
        [
            ("hearing", letter_pdf(MARK, pages=2)),
            ("contact", letter_pdf(MARK, pages=3)),
            ("jane", letter_pdf(JANE, salutation="Dear Ms Smith,")),
        ],
        start=1,
    ):
        answer = desk.handle(
            PrintJob(number, "a.jones", name, 1, "letters", "cups:631"), pdf
        ).answer
        assert answer.action is Action.PRINT and answer.ref and answer.pdf
        assert desk.printed(answer.ref, number, 0)
        letters[name] = (answer.ref, answer.pdf)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEKEEPER_")}
    env.update(
        {
            "GATEKEEPER_DATA_DIR": str(folder / "data"),
            "GATEKEEPER_WEB_PORT": str(port),
            "GATEKEEPER_WEB_SWEEP_SECONDS": "0",
            "GATEKEEPER_REGISTER_SYNC_SECONDS": "0",
            "GATEKEEPER_INTERNAL_DOMAINS": "gatekeeper.example",
        }
    )
    log = (folder / "web.log").open("ab")
    process = subprocess.Popen(
        [*gatekeeper_command(), "--db", db, "web", "--host", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, (folder / "web.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    try:
        wait_for(healthy, 120, "the web app")
        yield PostRoom(engine, url, letters, folder)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = need_program("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextlib.contextmanager
def station(browser: Any, room: PostRoom) -> Iterator[Any]:
    """The operator signed in, at the scan station with a fresh envelope."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{room.url}/login?next=/scan")
        page.get_by_label("Email address").fill(OPERATOR)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/scan")
        page.get_by_role("button", name="Start an envelope").click()
        page.wait_for_load_state()
        yield page
    finally:
        context.close()


def scan(page: Any, code: str) -> None:
    """As a barcode scanner does: the code typed into the focused field, then Enter."""
    page.keyboard.type(code)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def photo_of_page(room: PostRoom, name: str, number: int) -> Path:
    need_program("pdftoppm")
    ref, pdf = room.letters[name]
    source = room.folder / f"{ref}.pdf"
    source.write_bytes(pdf)
    target = room.folder / f"{ref}-photo-{number}"
    subprocess.run(
        ["pdftoppm", "-r", "110", "-f", str(number), "-l", str(number), "-singlefile", "-png",
         str(source), str(target)],
        check=True,
    )  # fmt: skip
    return target.with_suffix(".png")


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_complete_letter_turns_green_and_its_dispatch_is_recorded(
    room: PostRoom, browser: Any
) -> None:
    ref, _ = room.letters["hearing"]
    with station(browser, room) as page:
        scan(page, str(PageCode(ref, 1, 2, "853206-P3")))
        assert "Page 1 of 2 added; still to scan: 2." in page.get_by_role("status").inner_text()
        assert page.locator("[data-letter-ref]").inner_text() == ref
        page.get_by_label("Or a photo of the page").set_input_files(
            str(photo_of_page(room, "hearing", 2))
        )
        with page.expect_navigation():
            page.get_by_role("button", name="Read the code").click()
        envelope = page.locator("section.envelope")
        assert "envelope-green" in (envelope.get_attribute("class") or "")
        assert envelope.get_attribute("data-envelope-state") == "complete"
        assert "Complete: all 2 pages of letter" in page.get_by_role("status").inner_text()
        color = envelope.evaluate("e => getComputedStyle(e).borderTopColor")
        assert color == "rgb(31, 111, 63)"  # the green border the operator sees
        screenshot(page, "scan-station-complete")
        with page.expect_navigation():
            page.get_by_role("button", name="Seal and dispatch").click()
        assert f"letter {ref} to Mr Mark Smith" in page.get_by_role("status").inner_text()
        assert page.get_by_role("button", name="Start an envelope").is_visible()
    with room.engine.connect() as conn:
        row = conn.execute(
            select(Letter.dispatched_by, Letter.dispatched_at, Item.state)
            .join(Item, Item.id == Letter.item_id)
            .where(Item.ref == ref)
        ).one()
    assert row.dispatched_by == OPERATOR and row.dispatched_at is not None
    assert row.state == "dispatched"


def test_a_page_of_another_letter_alarms_and_creates_a_near_miss(
    room: PostRoom, browser: Any
) -> None:
    ref, _ = room.letters["contact"]
    other, _ = room.letters["jane"]
    with station(browser, room) as page:
        scan(page, str(PageCode(ref, 1, 3, "853206-P3")))
        scan(page, str(PageCode(other, 1, 1, "853206-P2")))
        alert = page.get_by_role("alert")
        assert alert.inner_text().startswith("Wrong envelope — stop.")
        assert f"of letter {other} (to Ms Jane Smith" in alert.inner_text()
        envelope = page.locator("section.envelope")
        assert "envelope-alarm" in (envelope.get_attribute("class") or "")
        assert page.locator(".pages .page-in").count() == 1  # the stray page is not counted
        table = page.locator("table.scan-alarms").inner_text()
        assert "foreign page" in table and OPERATOR in table
        screenshot(page, "scan-station-alarm")
        with page.expect_navigation():
            page.get_by_role("button", name="Seal and dispatch").click()
        assert "is missing page 2, 3 of 3" in page.get_by_role("alert").inner_text()
    with room.engine.connect() as conn:
        alarms = conn.execute(
            select(
                ScanAlarm.kind, ScanAlarm.cause, ScanAlarm.operator, ScanAlarm.other_item_id
            ).order_by(ScanAlarm.id)
        ).all()
        jane_item = conn.execute(select(Item.id).where(Item.ref == other)).scalar_one()
    assert [(a.kind, a.cause, a.operator) for a in alarms] == [
        ("foreign_page", "wrong_envelope", OPERATOR),
        ("missing_pages", "wrong_envelope", OPERATOR),
    ]
    assert alarms[0].other_item_id == jane_item


def test_the_scan_alarm_becomes_a_wrong_envelope_near_miss_in_the_register(room: PostRoom) -> None:
    db = str(room.engine.url.render_as_string(hide_password=False))
    synced = run_gatekeeper("register", "sync", db=db)
    assert synced.returncode == 0, synced.stderr
    listed = run_gatekeeper(
        "register", "list", "--kind", "near_miss", "--cause", "wrong_envelope", "--csv", db=db
    )
    assert listed.returncode == 0, listed.stderr
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert rows, listed.stdout
    summaries = " ".join(row.get("summary", "") for row in rows)
    assert "does not belong in this envelope" in summaries
    assert {row.get("channel") for row in rows} == {"post"}
