"""Nothing accepted is lost: SIGKILL the relay in the middle of a 500-message load, restart it,
and every message that got a 250 is delivered or held.

Ten client sessions send as a front MTA would, retrying whatever did not get a
250 (a refused connection while the relay is down, a 451), until all 500 are
accepted.
"""

from __future__ import annotations

import queue
import smtplib
import threading
import time
from collections.abc import Iterator

import pytest

from tests.smtp_peers import (
    TRUSTED_SOURCE,
    RelayProcess,
    SmtpSink,
    World,
    email,
    prepared_world,
    ref_of,
    wait_for,
)

MESSAGES = 500
SESSIONS = 10
KILL_AFTER = 150


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with prepared_world(request.param, tmp_path_factory.mktemp(f"crash-{request.param}")) as world:
        yield world


@pytest.mark.slow
def test_a_relay_killed_mid_load_loses_nothing_it_said_250_to(world: World) -> None:
    s = world.scenario
    messages = {}
    for number in range(MESSAGES):
        held = number % 10 == 0  # a look-alike address: held for a second check
        to = s.lookalike_to if held else s.release_to
        body = f"Dear {s.release_greeting},\n\nNote {number} about the hearing.\n\nRegards\n"
        messages[number] = email(world.sender.email, to, f"Load {number}", body).as_bytes()
    sink = SmtpSink().start()
    relay = RelayProcess(world, sink.port, gate_workers=2).start()
    pending: queue.Queue[int] = queue.Queue()
    for number in messages:
        pending.put(number)
    accepted: dict[int, str] = {}
    lock = threading.Lock()

    def session() -> None:
        while True:
            try:
                number = pending.get_nowait()
            except queue.Empty:
                return
            try:
                code, reply = relay.submit(
                    None, messages[number], mail_from=world.sender.email, source=TRUSTED_SOURCE
                )
            except (OSError, smtplib.SMTPException):
                code, reply = 0, "connection failed"
            if code == 250:
                with lock:
                    accepted[number] = ref_of(reply)
            else:  # as an MTA does: keep it and try again shortly
                pending.put(number)
                time.sleep(0.2)

    try:
        threads = [threading.Thread(target=session) for _ in range(SESSIONS)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(accepted) >= KILL_AFTER, f"{KILL_AFTER} messages accepted", 600)
        relay.kill()
        killed_with = len(accepted)
        relay.start()
        for thread in threads:
            thread.join(900)
        assert len(accepted) == MESSAGES and killed_with < MESSAGES

        held = {ref for number, ref in accepted.items() if number % 10 == 0}
        released = set(accepted.values()) - held

        def delivered() -> set[str]:
            return {m.decision_ref for m in sink.messages() if m.decision_ref} & released

        wait_for(lambda: delivered() == released, "every released message delivered", 600)
        assert {world.item(ref).state for ref in held} == {"held"}
    finally:
        relay.stop()
        sink.stop()
