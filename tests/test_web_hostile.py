"""Content from an email is hostile: what a held message carries never runs or loads in the
approval pages. (In a real browser too: tests/test_web_browser.py counts the requests.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from gatekeeper.web.message import make_inert
from tests.web_world import WebWorld, message, shared_fixtures, web_world

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOSTILE_HTML = """<html><head><meta http-equiv="refresh" content="0;url=https://evil.example/">
<base href="https://evil.example/"><style>body{background:url(https://evil.example/bg.png)}</style>
<script>document.title='pwned'</script></head>
<body onload="alert(1)"><p>Dear Jordan,</p>
<p>See <a href="javascript:alert(document.cookie)">the plan</a> and
<a href="https://evil.example/track?u=1">our page</a>.</p>
<img src="https://evil.example/pixel.png" width="1" height="1">
<img src="x" onerror="alert(2)"><svg onload="alert(3)"><circle r="4"/></svg>
<iframe src="https://evil.example/frame"></iframe><object data="https://evil.example/o"></object>
<form action="https://evil.example/steal"><input name="p"></form>
<div style="background-image:url(https://evil.example/div.png)">styled</div>
<!-- <script>alert(4)</script> -->
</body></html>"""
FORBIDDEN = re.compile(
    r"<script|javascript:|onerror|onload|evil\.example|<iframe|<object|<form|<style|<base|<meta|<svg",
    re.IGNORECASE,
)


@pytest.fixture
def world(engine: Engine) -> Iterator[WebWorld]:
    yield from web_world(engine, shared_fixtures())


def test_inert_html_keeps_the_words_and_nothing_that_runs_or_loads() -> None:
    inert = make_inert(HOSTILE_HTML)
    assert FORBIDDEN.search(inert) is None, inert
    assert "Dear Jordan," in inert and "the plan" in inert and "styled" in inert
    assert "href=" not in inert and "src=" not in inert and "style=" not in inert


def test_a_hostile_html_email_is_shown_inert_on_the_item_page(world: WebWorld) -> None:
    party = world.record.lay_party()
    subject = '<script>alert("subject")</script> Contact'
    ref = world.hold_lookalike(subject=subject, html=HOSTILE_HTML)
    page = world.client(world.checker).get(f"/items/{ref}").text

    ours = re.findall(r"<script[^>]*>", page)
    assert ours == ['<script src="/static/gatekeeper.js" defer>']  # only our own, from a file
    assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; Contact" in page
    frame = re.search(r'<iframe sandbox="" [^>]*srcdoc="([^"]*)"', page)
    assert frame, "the HTML is shown in a sandboxed frame that may run nothing"
    assert FORBIDDEN.search(frame.group(1).replace("&lt;", "<")) is None
    assert "allow-scripts" not in page and "allow-same-origin" not in page
    # The message as text, the reading the gate checked: the words, no markup:
    assert "Dear " in page and party["emails"][0].split("@")[0] in page
    text_part = page.split('class="body-text"', 1)[1].split("</div>", 1)[0]
    assert "<a " not in text_part and "<img" not in text_part


def test_hostile_text_in_every_field_is_escaped(world: WebWorld) -> None:
    party = world.record.lay_party(1)
    wrong = party["emails"][0].replace("@", "@x")
    body = '<img src=x onerror=alert(1)>\n"><script>alert(1)</script>\njavascript:alert(1)'
    raw = message(world.sender.email, wrong, "<b onmouseover=alert(1)>hi</b>", body,
                  to_name='"><script>alert(2)</script>')  # fmt: skip
    ref = world.hold(raw, world.sender, [wrong])
    checker = world.client(world.checker)
    for path in (f"/items/{ref}", "/queue"):
        page = checker.get(path).text
        assert "<b onmouseover" not in page and "<img src=x" not in page
        assert len(re.findall(r"<script", page)) == 1
    assert "&lt;img src=x onerror=alert(1)&gt;" in checker.get(f"/items/{ref}").text
