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
    ref_of,
    store_url,
    wait_for,
)

REFUSED = "refused@example.net"
DEFERRED = "later@example.net"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp(f"delivery-{request.param}")
    with store_url(request.param, folder) as url:
        prepared = World.prepare(url, folder)
        yield prepared
        prepared.engine.dispose()


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
