"""The outbound queue against real upstreams: an outage, a refused recipient, endless deferral.

The upstream is smtp-sink, or a private Postfix that refuses or defers chosen
recipients and relays everything else (including our delivery reports) on to
smtp-sink, where the test reads what a sender or recipient would receive.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp_peers import (
    PrivatePostfix,
    RelayProcess,
    SmtpSink,
    World,
    email,
    free_port,
    prepared_world,
    ref_of,
    wait_for,
)

REFUSED = "refused@example.net"
DEFERRED = "later@example.net"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with prepared_world(
        request.param, tmp_path_factory.mktemp(f"delivery-{request.param}")
    ) as world:
        yield world


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    started = SmtpSink().start()
    yield started
    started.stop()


@pytest.fixture
def postfix(sink: SmtpSink) -> Iterator[PrivatePostfix]:
    refuse = {REFUSED: "REJECT 5.1.1 no such user here", DEFERRED: "DEFER_IF_PERMIT 4.2.0 later"}
    started = PrivatePostfix(sink.port, refuse).start()
    yield started
    started.stop()


def letter(world: World, subject: str, bcc: list[str]) -> tuple[bytes, list[str]]:
    """A clean message to the record's professional, plus envelope-only (Bcc) recipients."""
    s = world.scenario
    body = f"Dear {s.release_greeting},\n\nThank you, I will call you tomorrow.\n\nRegards\n"
    return email(world.sender.email, s.release_to, subject, body).as_bytes(), [s.release_to, *bcc]


def test_mail_waits_in_the_queue_while_the_upstream_is_down_and_goes_when_it_returns(
    world: World,
) -> None:
    port = free_port()  # nothing listens there yet
    relay = RelayProcess(world, port).start()
    try:
        raw, recipients = letter(world, "During the outage", [])
        code, reply = relay.submit(world.sender, raw, recipients)
        assert code == 250, reply
        ref = ref_of(reply)
        rows = wait_for(
            lambda: [r for r in world.outbound(ref) if r.attempts >= 2 and r.state == "queued"],
            "a failed attempt, queued for retry",
        )
        assert "refused the connection" in rows[0].last_error
        sink = SmtpSink(port).start()
        try:
            arrived = wait_for(
                lambda: [m for m in sink.messages() if m.decision_ref == ref], "delivery"
            )
            assert len(arrived) == 1
            assert wait_for(lambda: world.outbound(ref)[0].state == "delivered", "recorded")
        finally:
            sink.stop()
    finally:
        assert relay.stop() == 0, relay.log()


def test_a_message_after_the_upstream_restarted_goes_at_once_on_a_new_connection(
    world: World,
) -> None:
    """The relay reuses its upstream connection without checking it first; one that died
    since is replaced for the next message, which is not put off to a retry."""
    sink = SmtpSink().start()
    relay = RelayProcess(world, sink.port, retry_delay=600, upstream_connections=1).start()
    try:
        raw, recipients = letter(world, "Before the restart", [])
        code, reply = relay.submit(world.sender, raw, recipients)
        assert code == 250, reply
        first = ref_of(reply)
        wait_for(lambda: world.outbound(first)[0].state == "delivered", "the first delivery")
        sink.stop()  # the open connection dies with it
        sink = SmtpSink(sink.port).start()
        raw, recipients = letter(world, "After the restart", [])
        code, reply = relay.submit(world.sender, raw, recipients)
        assert code == 250, reply
        second = ref_of(reply)
        arrived = wait_for(
            lambda: [m for m in sink.messages() if m.decision_ref == second], "the second delivery"
        )
        assert len(arrived) == 1
        row = wait_for(
            lambda: next((r for r in world.outbound(second) if r.state == "delivered"), None),
            "the delivery recorded",
        )
        assert row.attempts == 1  # no failed attempt first
    finally:
        assert relay.stop() == 0, relay.log()
        sink.stop()


def test_released_mail_a_stopping_relay_still_had_in_hand_is_sent_by_another_node(
    world: World,
) -> None:
    """Released mail goes from the intake straight to a delivery worker; what no worker
    took before the relay stopped is put back in the queue, for any node at once."""
    slow = SmtpSink(options=["-W", "data:5"]).start()  # each message takes 5 s
    fast = SmtpSink().start()
    relay = RelayProcess(world, slow.port, upstream_connections=1).start()
    try:
        refs = []
        for n in range(4):
            raw, recipients = letter(world, f"In hand {n}", [])
            code, reply = relay.submit(world.sender, raw, recipients)
            assert code == 250, reply
            refs.append(ref_of(reply))
        assert relay.stop() == 0, relay.log()
        states = {ref: [(r.state, r.attempts) for r in world.outbound(ref)] for ref in refs}
        waiting = [ref for ref, rows in states.items() if rows == [("queued", 0)]]
        assert waiting, states  # put back untried, not left leased to the stopped node
        assert all(rows in ([("queued", 0)], [("delivered", 1)]) for rows in states.values())

        other = RelayProcess(world, fast.port, node_name="relay-other").start()
        try:
            for ref in waiting:
                arrived = wait_for(
                    lambda ref=ref: [m for m in fast.messages() if m.decision_ref == ref], ref
                )
                assert len(arrived) == 1
        finally:
            assert other.stop() == 0, other.log()
        sent = [m.decision_ref for m in [*slow.messages(), *fast.messages()]]
        assert sorted(sent) == sorted(refs)  # each once
    finally:
        relay.stop()
        slow.stop()
        fast.stop()


def test_a_refused_recipient_fails_alone_and_the_sender_hears_of_it(
    world: World, postfix: PrivatePostfix, sink: SmtpSink
) -> None:
    relay = RelayProcess(world, postfix.port).start()
    try:
        raw, recipients = letter(world, "One refused", [REFUSED])
        code, reply = relay.submit(world.sender, raw, recipients)
        assert code == 250, reply
        ref = ref_of(reply)
        report = wait_for(
            lambda: [m for m in sink.to(world.sender.email) if ref in str(m.message["Subject"])],
            "the delivery report to the sender",
        )[0]
        assert report.mail_from == ""
        assert report.message.get_content_type() == "multipart/report"
        status = report.message.get_payload()[1]
        assert status.get_content_type() == "message/delivery-status"
        text = report.content.decode()
        assert f"Final-Recipient: rfc822; {REFUSED}" in text and "Status: 5.1.1" in text
        assert text.count("Final-Recipient:") == 1  # the delivered recipient is not reported

        delivered = wait_for(
            lambda: [m for m in sink.to(world.scenario.release_to) if m.decision_ref == ref],
            "delivery to the other recipient",
        )
        assert len(delivered) == 1 and delivered[0].recipients == (world.scenario.release_to,)
        states = {r.recipient: (r.state, r.attempts) for r in world.outbound(ref)}
        assert states[world.scenario.release_to] == ("delivered", 1)
        assert states[REFUSED] == ("failed", 1)
    finally:
        assert relay.stop() == 0, relay.log()


def test_mail_deferred_beyond_the_retry_lifetime_is_returned_to_its_sender(
    world: World, postfix: PrivatePostfix, sink: SmtpSink
) -> None:
    relay = RelayProcess(world, postfix.port, retry_lifetime_hours=0.001).start()
    try:
        raw, recipients = letter(world, "Deferred for ever", [DEFERRED])
        code, reply = relay.submit(world.sender, raw, recipients)
        assert code == 250, reply
        ref = ref_of(reply)
        report = wait_for(
            lambda: [m for m in sink.to(world.sender.email) if ref in str(m.message["Subject"])],
            "the delivery report to the sender",
        )[0]
        assert str(report.message["Subject"]).startswith("Delivery expired")
        assert f"Final-Recipient: rfc822; {DEFERRED}" in report.content.decode()
        rows = {r.recipient: r for r in world.outbound(ref)}
        assert rows[DEFERRED].state == "expired" and rows[DEFERRED].attempts > 1
        assert "4.2.0" in rows[DEFERRED].last_error
        assert rows[world.scenario.release_to].state == "delivered"
    finally:
        assert relay.stop() == 0, relay.log()
