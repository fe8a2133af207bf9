"""When the gate cannot decide in time the client is told to try again, and nothing leaves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp_peers import RelayProcess, SmtpSink, World, email, store_url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("limits")
    with store_url("sqlite", folder) as url:
        prepared = World.prepare(url, folder)
        yield prepared
        prepared.engine.dispose()


def test_a_gate_past_its_time_limit_means_451_and_nothing_is_sent(world: World) -> None:
    sink = SmtpSink().start()
    # No check finishes in 0.1 ms: the worker is killed and replaced, the client told 451.
    relay = RelayProcess(world, sink.port, gate_timeout=0.0001).start()
    try:
        s = world.scenario
        for attempt in range(2):
            message = email(world.sender.email, s.release_to, f"Slow {attempt}", "Hello.\n")
            code, reply = relay.submit(world.sender, message.as_bytes())
            assert (code, reply[:6]) == (451, "4.3.0 "), reply
            assert "try again later" in reply
        with relay.connect() as smtp:
            assert smtp.noop()[0] == 250  # still serving
        with world.engine.connect() as conn:
            states = conn.exec_driver_sql("SELECT state FROM items").scalars().all()
        assert states == ["deferred", "deferred"]
        assert sink.messages() == []
    finally:
        assert relay.stop() == 0, relay.log()
        sink.stop()
