"""Behind a load balancer that sends the PROXY protocol header (a real HAProxy with
`send-proxy-v2`), the relay judges each client by the client's own address: trusted networks,
the sign-in limits, the audit trail and the `Received:` header all see it, not the balancer's.
Nobody else may send the header, and nothing reaches the relay around the balancer."""

from __future__ import annotations

import smtplib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_program
from tests.smtp_peers import (
    PASSWORD,
    TRUSTED_SOURCE,
    RelayProcess,
    SmtpSink,
    World,
    email,
    free_port,
    port_open,
    prepared_world,
    ref_of,
    wait_for,
)

STRANGER = "127.0.0.3"  # neither trusted nor the balancer
COLLEAGUE = "127.0.0.4"
AUTH_FAILURES = 2

HAPROXY_CONFIG = """
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend smtp
    bind 127.0.0.1:{port}
    default_backend relay

backend relay
    server relay 127.0.0.1:{relay_port} send-proxy-v2
"""


class Balancer:
    """HAProxy in front of one relay, started in the foreground for a module."""

    def __init__(self, folder: Path, relay_port: int) -> None:
        self.port = free_port()
        self.config = folder / "haproxy.cfg"
        self.config.write_text(HAPROXY_CONFIG.format(port=self.port, relay_port=relay_port))
        self.process = subprocess.Popen(
            [need_program("haproxy"), "-db", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), "HAProxy to listen")

    def connect(self, source: str) -> smtplib.SMTP:
        return smtplib.SMTP(
            "127.0.0.1", self.port, local_hostname="client.test", source_address=(source, 0)
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with prepared_world("sqlite", tmp_path_factory.mktemp("proxy")) as world:
        yield world


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    started = SmtpSink().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def relay(world: World, sink: SmtpSink) -> Iterator[RelayProcess]:
    started = RelayProcess(
        world,
        sink.port,
        relay_proxies="127.0.0.1/32",  # HAProxy connects from here
        relay_auth_failures=AUTH_FAILURES,
        relay_auth_window_seconds=600,
    ).start()
    yield started
    assert started.stop() == 0, started.log()


@pytest.fixture(scope="module")
def balancer(world: World, relay: RelayProcess) -> Iterator[Balancer]:
    started = Balancer(world.folder, relay.port)
    yield started
    started.stop()


def clean_message(world: World, subject: str) -> bytes:
    s = world.scenario
    body = f"Dear {s.release_greeting},\n\nI will call you tomorrow morning.\n\nKind regards\n"
    return email(world.sender.email, s.release_to, subject, body).as_bytes()


def test_a_trusted_front_mta_behind_the_balancer_relays_and_is_named_in_the_trace(
    world: World, sink: SmtpSink, balancer: Balancer
) -> None:
    raw = clean_message(world, "Through the balancer")
    with balancer.connect(TRUSTED_SOURCE) as smtp:
        smtp.ehlo()
        assert smtp.mail(world.sender.email)[0] == 250
        assert smtp.rcpt(world.scenario.release_to)[0] == 250
        code, reply = smtp.data(raw)
    assert code == 250, reply
    ref = ref_of(reply.decode())
    arrived = wait_for(lambda: [m for m in sink.messages() if m.decision_ref == ref], "delivery")
    received = arrived[0].content.split(b"\n")[0]
    assert received.startswith(f"Received: from client.test ([{TRUSTED_SOURCE}])".encode())
    assert world.audited_from("relay.released")[-1] == TRUSTED_SOURCE


def test_a_stranger_behind_the_balancer_is_not_trusted_for_the_balancers_address(
    world: World, balancer: Balancer
) -> None:
    with balancer.connect(STRANGER) as smtp:
        smtp.ehlo()
        code, reply = smtp.mail(world.sender.email)
    assert (code, reply[:6]) == (530, b"5.7.0 "), reply


def auth_plain(balancer: Balancer, world: World, source: str, user: str, password: str) -> int:
    """The reply code to one AUTH PLAIN after STARTTLS, from `source` through the balancer."""
    return int(world.auth_plain(balancer.connect(source), user, password)[:3])


def test_failed_sign_ins_count_against_the_client_not_everyone_behind_the_balancer(
    world: World, balancer: Balancer
) -> None:
    for n in range(AUTH_FAILURES):  # different names: only the address adds them up
        assert auth_plain(balancer, world, STRANGER, f"nobody{n}@example.net", "wrong") == 535
    assert auth_plain(balancer, world, STRANGER, world.sender.email, PASSWORD) == 454
    assert auth_plain(balancer, world, COLLEAGUE, world.sender.email, PASSWORD) == 235
    assert world.audited_from("relay.auth_throttled") == [STRANGER]


def proxy_v1(source: str) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 40000 25\r\n".encode()


@pytest.mark.parametrize(
    ("source", "first_bytes"),
    [
        (TRUSTED_SOURCE, proxy_v1(TRUSTED_SOURCE)),  # a header from anyone but the balancer
        ("127.0.0.1", b"EHLO client.test\r\n"),  # the balancer's address, but no header
    ],
    ids=["forged-header", "no-header"],
)
def test_nothing_reaches_the_relay_around_the_balancer(
    relay: RelayProcess, source: str, first_bytes: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", relay.port), 30, (source, 0)) as conn:
        conn.sendall(first_bytes)
        assert conn.recv(1024) == b""  # closed without a greeting
    assert port_open(relay.port)  # and still serving
