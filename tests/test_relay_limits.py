"""The relay's limits: when the gate cannot decide in time the client is told to try again
and nothing leaves; after repeated failed sign-ins AUTH is refused, the password unchecked."""

from __future__ import annotations

import smtplib
import time
import urllib.request
from collections.abc import Iterator

import pytest

from gatekeeper.smtp.throttle import AuthThrottle, client_key
from tests.smtp_peers import PASSWORD, RelayProcess, SmtpSink, World, email, prepared_world

AUTH_FAILURES = 3
AUTH_WINDOW = 6.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with prepared_world("sqlite", tmp_path_factory.mktemp("limits")) as world:
        yield world


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


@pytest.fixture(scope="module")
def throttled(world: World) -> Iterator[RelayProcess]:
    sink = SmtpSink().start()
    relay = RelayProcess(
        world,
        sink.port,
        relay_auth_failures=AUTH_FAILURES,
        relay_auth_window_seconds=AUTH_WINDOW,
    ).start()
    yield relay
    assert relay.stop() == 0, relay.log()
    sink.stop()


def auth_plain(relay: RelayProcess, world: World, source: str, user: str, password: str) -> str:
    """One AUTH PLAIN after STARTTLS from `source`: the reply, as "535 5.7.8 ..."."""
    return world.auth_plain(relay.connect(source), user, password)


def auth_login(relay: RelayProcess, world: World, source: str, user: str, password: str) -> str:
    with relay.connect(source) as smtp:
        smtp.starttls(context=world.client_tls())
        smtp.ehlo()
        try:
            smtp.login(user, password)
        except smtplib.SMTPAuthenticationError as refused:
            return f"{refused.smtp_code} {refused.smtp_error.decode()}"
        return "235"


def test_failed_sign_ins_from_one_address_refuse_its_auth_with_the_right_password_too(
    world: World, throttled: RelayProcess
) -> None:
    guesser = "127.0.0.2"
    for number in range(AUTH_FAILURES):
        reply = auth_plain(throttled, world, guesser, f"guess{number}@gatekeeper.example", "x")
        assert reply.startswith("535 5.7.8"), reply
    # Past the limit the password is not looked at: right or wrong, the same answer.
    for password in ("wrong", PASSWORD):
        reply = auth_plain(throttled, world, guesser, world.sender.email, password)
        assert reply.startswith("454 4.7.0 Too many failed sign-ins"), reply
    assert auth_login(throttled, world, guesser, world.sender.email, PASSWORD).startswith("454")
    # Another client, and the same user from there, are not affected.
    assert auth_plain(throttled, world, "127.0.0.1", world.sender.email, PASSWORD).startswith("235")
    # The block is audited once, not at every refused try.
    refused_here = [r for r in world.audited_from("relay.auth_throttled") if r == guesser]
    assert refused_here == [guesser]


def test_failed_sign_ins_for_one_user_refuse_it_from_anywhere_until_the_window_passes(
    world: World, throttled: RelayProcess
) -> None:
    user = world.colleague.email
    for number in range(AUTH_FAILURES):  # spread over addresses, as a botnet would
        reply = auth_plain(throttled, world, f"127.0.1.{number + 1}", user, "wrong")
        assert reply.startswith("535 5.7.8"), reply
    started = time.monotonic()
    reply = auth_plain(throttled, world, "127.0.1.9", user, PASSWORD)
    assert reply.startswith("454 4.7.0"), reply
    assert "wait 1 minute" in reply
    time.sleep(max(0.0, AUTH_WINDOW + 0.5 - (time.monotonic() - started)))
    assert auth_plain(throttled, world, "127.0.1.9", user, PASSWORD).startswith("235")
    with urllib.request.urlopen(
        f"http://127.0.0.1:{throttled.metrics_port}/metrics", timeout=30
    ) as response:
        metrics = response.read().decode()
    assert 'gatekeeper_relay_refusals_total{reason="auth_throttled"}' in metrics
    assert 'gatekeeper_relay_refusals_total{reason="auth_failed"}' in metrics


def test_an_ipv6_client_counts_by_its_64_and_attempts_in_progress_count_too() -> None:
    now = [0.0]
    throttle = AuthThrottle(2, 10.0, clock=lambda: now[0])
    first, second = client_key("2001:db8::1"), client_key("2001:db8::ffff:2")
    assert first == second != client_key("2001:db8:0:1::1")
    assert client_key("::ffff:10.0.0.1") == client_key("10.0.0.1")
    assert throttle.begin([first]) and throttle.begin([second])
    assert not throttle.begin([first])  # two passwords being checked: a third waits
    throttle.end([first], failed=True)
    throttle.end([second], failed=False)
    assert throttle.begin([first])
    throttle.end([first], failed=True)
    assert throttle.wait([first]) == 10.0
    now[0] = 10.5
    assert throttle.wait([first]) == 0
