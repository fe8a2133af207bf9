"""Whatever the world sends: every message of the MIME corpora gets a decision, and the relay
keeps serving. Messages come from a trusted front MTA (their From: headers name strangers)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import CORPORA, need_peer
from tests.smtp_peers import TRUSTED_SOURCE, RelayProcess, SmtpSink, World, email, prepared_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with prepared_world("sqlite", tmp_path_factory.mktemp("corpus")) as world:
        yield world


def test_every_corpus_message_gets_a_decision_and_the_relay_keeps_serving(world: World) -> None:
    files = sorted(p for p in (CORPORA / "mime").rglob("*") if p.suffix in (".eml", ".msg"))
    need_peer(len(files) > 50, f"the MIME corpora in {CORPORA / 'mime'}")
    sink = SmtpSink().start()
    relay = RelayProcess(world, sink.port).start()
    try:
        answers = {}
        for path in files:
            # On the wire every line ends in CRLF, whatever the file on disk uses.
            raw = re.sub(rb"\r?\n", b"\r\n", path.read_bytes())
            code, reply = relay.submit(
                None,
                raw,
                ["someone@example.org"],
                mail_from=world.sender.email,
                source=TRUSTED_SOURCE,
            )
            answers[path.name] = (code, reply)
        undecided = {
            name: answer
            for name, answer in answers.items()
            if not (answer[0] == 250 and re.search(r"queued|held", answer[1]))
            and not (answer[0] == 550 and answer[1].startswith("5.7.1"))
        }
        assert undecided == {}
        code, reply = relay.submit(
            world.sender, email(world.sender.email, "x@example.org", "Still here", "Hello.\n")
        )
        assert code == 250, reply
        with urllib.request.urlopen(f"http://127.0.0.1:{relay.metrics_port}/healthz") as page:
            assert json.loads(page.read())["ok"] is True
    finally:
        assert relay.stop() == 0, relay.log()
        sink.stop()
