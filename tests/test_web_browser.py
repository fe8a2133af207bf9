"""End to end in a real Chromium: an email sent through the real relay is held; a checker signs
in, confirms the findings and approves; the message arrives at the upstream sink exactly as
written. The sender cannot approve their own; hostile HTML in held mail neither runs nor loads.

Everything is a real process on loopback: `gatekeeper relay`, Postfix's `smtp-sink` upstream,
`gatekeeper web`, and Chromium driven by Playwright. Screenshots of the queue and the item
page are kept in artifacts/screenshots/ (CI keeps that folder).
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, need_program
from tests.smtp_peers import (
    RelayProcess,
    SmtpSink,
    WebProcess,
    World,
    email,
    prepared_world,
    ref_of,
    wait_for,
)
from tests.test_relay_smtp import as_captured, without_trace

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


class CountingServer:
    """An HTTP server standing in for everything a hostile email would fetch; counts requests."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with prepared_world(request.param, tmp_path_factory.mktemp(f"web-{request.param}")) as world:
        yield world


@pytest.fixture(scope="module")
def sink(world: World) -> Iterator[SmtpSink]:
    started = SmtpSink().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def relay(world: World, sink: SmtpSink) -> Iterator[RelayProcess]:
    started = RelayProcess(world, sink.port).start()
    yield started
    assert started.stop() == 0, started.log()


@pytest.fixture(scope="module")
def web(world: World) -> Iterator[WebProcess]:
    started = WebProcess(world).start()
    yield started
    assert started.stop() == 0, started.log()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = need_program("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextlib.contextmanager
def signed_in(browser: Any, web: WebProcess, email_address: str, password: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{web.url}/login")
        page.get_by_label("Email address").fill(email_address)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        yield page
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def hold(world: World, relay: RelayProcess, subject: str, **parts: str) -> tuple[str, bytes]:
    """Send a look-alike-addressed message through the relay; it must be held."""
    raw_message = email(
        world.sender.email,
        world.scenario.lookalike_to,
        subject,
        "Hello,\n\nHere are the arrangements for contact next week.\n",
    )
    if "html" in parts:
        raw_message.add_alternative(parts["html"], subtype="html")
    raw = raw_message.as_bytes()
    code, reply = relay.submit(world.sender, raw)
    assert code == 250 and "held for a second check" in reply, reply
    return ref_of(reply), raw


def test_a_checker_approves_a_held_email_in_the_browser_and_it_arrives_upstream(
    world: World, relay: RelayProcess, sink: SmtpSink, web: WebProcess, browser: Any
) -> None:
    ref, raw = hold(world, relay, "Contact next week")
    to = world.scenario.lookalike_to
    with signed_in(browser, web, world.checker.email, world.checker.password) as page:
        assert page.url.endswith("/queue")
        row = page.locator("tr", has=page.locator(f"a[href='/items/{ref}']"))
        assert "recipient lookalike" in row.inner_text().lower()
        shot = screenshot(page, "approval-queue")
        assert shot.stat().st_size > 10_000

        page.keyboard.press("j")  # the first item, by keyboard
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/items/{ref}")
        approve = page.get_by_role("button", name="Approve and send as written")
        assert approve.is_disabled()  # not before every finding is checked
        boxes = page.locator("input[data-finding]")
        assert boxes.count() >= 1
        assert page.locator(".compare mark").count() >= 1  # the look-alike's differing letters
        for index in range(boxes.count()):
            boxes.nth(index).check()
        assert approve.is_enabled()
        screenshot(page, "approval-item")
        approve.click()
        page.wait_for_url("**/queue?done=*")
        assert f"{ref} approved" in page.locator("[role=status]").inner_text()
        assert page.locator(f"a[href='/items/{ref}']").count() == 0

    arrived = wait_for(lambda: [m for m in sink.to(to) if m.decision_ref == ref], "delivery")
    assert arrived[0].message["X-Gatekeeper-Decision"] == f"approved; ref={ref}"
    assert without_trace(arrived[0].content) == as_captured(raw)  # byte for byte
    assert world.item(ref).state == "approved"


def test_the_sender_cannot_approve_their_own_held_email(
    world: World, relay: RelayProcess, sink: SmtpSink, web: WebProcess, browser: Any
) -> None:
    ref, _ = hold(world, relay, "Please approve me")
    with signed_in(browser, web, world.sender.email, world.sender.password) as page:
        assert page.url.endswith("/mine")
        assert ref in page.locator("main").inner_text()
        refused = page.goto(f"{web.url}/items/{ref}")
        assert refused is not None and refused.status == 403
        assert (
            "This page needs the checker, governance or admin role"
            in page.locator("main").inner_text()
        )
        page.goto(f"{web.url}/mine")
        status = page.evaluate(
            """async (ref) => {
                const token = document.querySelector("input[name=csrf]").value;
                const body = new URLSearchParams({csrf: token, confirm: "0"});
                const answer = await fetch(`/items/${ref}/approve`, {method: "POST", body});
                return answer.status;
            }""",
            ref,
        )
        assert status == 403
    assert world.item(ref).state == "held"
    assert [m for m in sink.to(world.scenario.lookalike_to) if m.decision_ref == ref] == []


def test_hostile_html_in_held_mail_never_runs_or_loads_in_the_browser(
    world: World, relay: RelayProcess, web: WebProcess, browser: Any
) -> None:
    bait = CountingServer()
    there = f"http://127.0.0.1:{bait.port}"
    html = f"""<html><head><script>fetch("{there}/script-ran")</script>
<style>body {{ background: url({there}/css-background.gif) }}</style>
<meta http-equiv="refresh" content="0;url={there}/refreshed"></head>
<body><p>Hello,</p><img src="{there}/remote-image.gif" alt="pixel">
<img src="x" onerror="new Image().src='{there}/onerror-ran'">
<a href="javascript:fetch('{there}/link-ran')" id="bad">the plan</a>
<iframe src="{there}/inner-frame"></iframe>
<svg><image href="{there}/svg-image.gif"/></svg></body></html>"""
    try:
        ref, _ = hold(world, relay, "Plan for the holidays", html=html)
        with signed_in(browser, web, world.checker.email, world.checker.password) as page:
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            elsewhere: list[str] = []
            page.on(
                "request",
                lambda r: (
                    elsewhere.append(r.url)
                    if not r.url.startswith((web.url, "data:", "about:"))
                    else None
                ),
            )
            page.goto(f"{web.url}/items/{ref}")
            page.get_by_text("See the HTML as formatted").click()
            frame_element = page.locator("iframe[sandbox]")
            frame_element.wait_for()
            frame = frame_element.element_handle().content_frame()
            assert frame is not None
            frame.wait_for_load_state()
            assert "Hello," in frame.locator("body").inner_text()
            frame.get_by_text("the plan").click()  # a link with no target goes nowhere
            page.wait_for_load_state("networkidle")  # anything that would fetch has had its turn
            screenshot(page, "approval-item-hostile-html")
            assert bait.paths == []
            assert elsewhere == []
            assert dialogs == []
            assert page.title().endswith("Gatekeeper")
    finally:
        bait.stop()
