"""Several nodes on one PostgreSQL: two relays and two web workers share one store, and each
message leaves exactly once whichever node took it in, decided it or delivered it.

Everything is a real process on loopback: two `gatekeeper relay` (each its own node name,
ports and gate worker), two `gatekeeper web`, one `smtp-sink` upstream that dumps each
message it receives to a file of its own (so a message sent twice is two files). Clients
send as a front MTA behind a load balancer would: spread over both relays, and to the other
one when a relay does not answer. PostgreSQL only: several nodes need a shared server.
"""

from __future__ import annotations

import json
import queue
import re
import smtplib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select

from gatekeeper.passwords import hash_password
from gatekeeper.smtp.nodes import NodeLock, NodeNameTaken
from gatekeeper.smtp.selfsigned import write_self_signed
from gatekeeper.store.correspondence import HumanDecision, Item, OutboundMessage
from gatekeeper.store.models import StaffRole, StaffUser
from gatekeeper.store.staff import set_password
from tests.conftest import REPO, need_program
from tests.smtp_peers import (
    PASSWORD,
    TRUSTED_SOURCE,
    Captured,
    Person,
    RelayProcess,
    SmtpSink,
    WebProcess,
    World,
    email,
    prepared_world,
    ref_of,
    wait_for,
)

pytestmark = pytest.mark.slow

MESSAGES = 1000
SESSIONS = 10
CRASH_MESSAGES = 300
CRASH_KILL_AFTER = 100
CONNECTIONS = 4  # upstream connections per relay node
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with prepared_world("postgresql", tmp_path_factory.mktemp("multinode")) as world:
        yield world


def second_checker(world: World) -> Person:
    """Another checker than `world.checker`, able to sign in."""
    with world.engine.connect() as conn:
        other = conn.execute(
            select(StaffUser.email, StaffUser.name)
            .join(StaffRole, StaffRole.user_pk == StaffUser.id)
            .where(StaffRole.role == "checker", StaffUser.email != world.checker.email)
            .order_by(StaffUser.id)
        ).first()
    assert other is not None, "the sample staff has one checker only"
    assert set_password(world.engine, other.email, hash_password(PASSWORD))
    return Person(other.email, other.name)


# -- the web nodes ----------------------------------------------------------------------------


class WebNode(WebProcess):
    """`gatekeeper web` as one of several nodes: the register syncs on both at once."""

    def __init__(self, world: World, name: str) -> None:
        # both nodes sync the register at once, as in production (sweeps stay off: canaries)
        super().__init__(world, name, register_sync_seconds=2, log_level="WARNING")

    def signed_in(self, person: Person) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=120)
        page = client.get("/login")
        form = {"csrf": csrf_of(page.text), "email": person.email, "password": PASSWORD}
        done = client.post("/login", data={**form, "next": "/"})
        assert done.status_code == 303, done.text[:500]
        return client


def start_together(nodes: Sequence[RelayProcess | WebNode]) -> None:
    """Start every node at once (each loads its case index), and wait until all listen."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        for started in [pool.submit(node.start) for node in nodes]:
            started.result()


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


# -- sending ----------------------------------------------------------------------------------


@dataclass
class Load:
    """Clients sending `messages` over the relays as a front MTA would, until each has a 250."""

    relays: Sequence[RelayProcess]
    messages: dict[int, bytes]
    sender: str
    accepted: dict[int, str] = field(default_factory=dict)  # number -> the reply's text
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, sessions: int = SESSIONS) -> list[threading.Thread]:
        pending: queue.Queue[int] = queue.Queue()
        for number in self.messages:
            pending.put(number)

        def session() -> None:
            while True:
                try:
                    number = pending.get_nowait()
                except queue.Empty:
                    return
                first = number % len(self.relays)  # spread, as a load balancer does
                for turn in range(len(self.relays)):
                    relay = self.relays[(first + turn) % len(self.relays)]
                    try:
                        code, reply = relay.submit(
                            None,
                            self.messages[number],
                            mail_from=self.sender,
                            source=TRUSTED_SOURCE,
                        )
                    except (OSError, smtplib.SMTPException):
                        code, reply = 0, "connection failed"
                    if code == 250:
                        with self.lock:
                            self.accepted[number] = reply
                        break
                else:  # no relay took it: keep it and try again shortly
                    pending.put(number)
                    time.sleep(0.2)

        threads = [threading.Thread(target=session) for _ in range(sessions)]
        for thread in threads:
            thread.start()
        return threads


def numbered_messages(world: World, count: int, *, held_every: int) -> dict[int, bytes]:
    """`count` messages; every `held_every`-th to a look-alike address (held), the rest released."""
    s = world.scenario
    out = {}
    for number in range(count):
        held = held_every and number % held_every == 0
        to = s.lookalike_to if held else s.release_to
        body = f"Dear {s.release_greeting},\n\nNote {number} about the hearing.\n\nRegards\n"
        out[number] = email(world.sender.email, to, f"Load {number}", body).as_bytes()
    return out


def items_delivered(sink: SmtpSink) -> list[Captured]:
    """What reached the upstream that is a sender's message (notices have no decision header)."""
    return [m for m in sink.messages() if m.decision_ref]


def queue_drained(engine: Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.state.in_(["queued", "sending"]))
        ).scalar_one()
    return waiting == 0


def problems_in(log: str) -> list[str]:
    """Error lines in a node's JSON log."""
    found = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "critical"):
            found.append(line[:2000])
    return found


def approve_at_once(
    one: httpx.Client, two: httpx.Client, findings: dict[str, int]
) -> dict[str, list[int]]:
    """Each held item approved by both checkers at the same moment, each at their own web
    node, every finding ticked; the HTTP statuses each item's two approvals got."""
    tokens = {id(c): csrf_of(c.get("/queue").text) for c in (one, two)}
    outcomes: dict[str, list[int]] = {ref: [] for ref in findings}
    record = threading.Lock()

    def approve(client: httpx.Client, ref: str, at_once: threading.Barrier) -> None:
        form = {"csrf": tokens[id(client)], "confirm": [str(i) for i in range(findings[ref])]}
        at_once.wait(60)
        response = client.post(f"/items/{ref}/approve", data=form)
        with record:
            outcomes[ref].append(response.status_code)

    # Pairs are queued side by side, so each pair's two halves run together.
    with ThreadPoolExecutor(8) as pool:
        futures = []
        for ref in sorted(findings):
            at_once = threading.Barrier(2)
            futures.append(pool.submit(approve, one, ref, at_once))
            futures.append(pool.submit(approve, two, ref, at_once))
        for future in futures:
            future.result()
    return outcomes


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.timeout(600)  # a safety net on a busy machine, not a limit
def test_two_relays_and_two_web_nodes_deliver_every_message_exactly_once(world: World) -> None:
    checker2 = second_checker(world)
    messages = numbered_messages(world, MESSAGES, held_every=2)
    held_numbers = {n for n in messages if n % 2 == 0}
    sink = SmtpSink().start()
    relays = [RelayProcess(world, sink.port, node_name=f"relay-{n}", gate_workers=1) for n in "ab"]
    webs = [WebNode(world, f"web-{n}") for n in "ab"]
    nodes: list[RelayProcess | WebNode] = [*relays, *webs]
    clients: list[httpx.Client] = []
    try:
        start_together(nodes)
        load = Load(relays, messages, world.sender.email)
        for thread in load.run():
            thread.join(600)
        assert len(load.accepted) == MESSAGES
        refs = {n: ref_of(reply) for n, reply in load.accepted.items()}
        assert all("held for a second check" in load.accepted[n] for n in held_numbers)
        released = {refs[n] for n in messages if n not in held_numbers}
        held = {refs[n] for n in held_numbers}
        with world.engine.connect() as conn:
            rows = conn.execute(select(Item.ref, Item.findings).where(Item.ref.in_(held)))
            findings = {r.ref: len(r.findings) for r in rows}
            took_in = set(
                conn.execute(select(Item.node).where(Item.ref.in_(set(refs.values())))).scalars()
            )
        assert set(findings) == held and took_in == {"relay-a", "relay-b"}

        # One checker at each web node; a session signed in at one is good at the other.
        one, two = webs[0].signed_in(world.checker), webs[1].signed_in(checker2)
        clients += [one, two]
        crossed = httpx.get(f"{webs[1].url}/queue", cookies=one.cookies, timeout=60)
        assert crossed.status_code == 200  # not sent to sign in
        outcomes = approve_at_once(one, two, findings)
        # Exactly one wins each item; the other is told somebody decided first.
        assert {ref: sorted(codes) for ref, codes in outcomes.items()} == {
            ref: [303, 409] for ref in held
        }
        with world.engine.connect() as conn:
            decided = Counter(
                conn.execute(
                    select(Item.ref)
                    .join(HumanDecision, HumanDecision.item_id == Item.id)
                    .where(Item.ref.in_(held))
                ).scalars()
            )
            states = Counter(conn.execute(select(Item.state).where(Item.ref.in_(held))).scalars())
        assert decided == Counter(dict.fromkeys(held, 1)) and states == {"approved": len(held)}

        everything = released | held
        wait_for(
            lambda: (
                {m.decision_ref for m in items_delivered(sink)} >= everything
                and queue_drained(world.engine)
            ),
            "every accepted message delivered and the queue drained",
            300,
        )
        delivered = items_delivered(sink)
        per_ref = Counter(m.decision_ref for m in delivered)
        assert set(per_ref) == everything  # nothing that was not accepted
        assert [ref for ref, n in per_ref.items() if n != 1] == []  # each exactly once
        ids = Counter(m.message["Message-ID"] for m in delivered)
        assert len(ids) == MESSAGES and set(ids.values()) == {1}
        assert {m.decision_ref: m.recipients for m in delivered if m.decision_ref in held} == {
            ref: (world.scenario.lookalike_to,) for ref in held
        }
        # Both relays delivered: the queue is drained by every node.
        assert {m.helo for m in delivered} == {"relay-a", "relay-b"}
        for node in nodes:
            assert problems_in(node.log()) == []
    finally:
        for client in clients:
            client.close()
        for node in reversed(nodes):
            node.stop()
        sink.stop()


@pytest.mark.timeout(600)  # a safety net on a busy machine, not a limit
def test_a_relay_killed_under_load_leaves_its_queue_to_the_other(world: World) -> None:
    messages = numbered_messages(world, CRASH_MESSAGES, held_every=0)
    # A slow upstream (one DATA in ten waits a second or more): deliveries are in flight
    # and leased when the kill comes.
    sink = SmtpSink(options=["-W", "data:1:10"]).start()
    settings: dict[str, Any] = {
        "gate_workers": 1,
        "upstream_connections": CONNECTIONS,
        "delivery_lease_seconds": 6,
    }
    doomed = RelayProcess(world, sink.port, node_name="kill-a", **settings)
    survivor = RelayProcess(world, sink.port, node_name="kill-b", **settings)
    try:
        start_together([doomed, survivor])
        load = Load([doomed, survivor], messages, world.sender.email)
        threads = load.run()

        def doomed_is_delivering() -> bool:
            return len(load.accepted) >= CRASH_KILL_AFTER and bool(leased_by(world, "kill-a"))

        wait_for(doomed_is_delivering, "the doomed relay delivering under load", 300)
        doomed.kill()
        # What it had claimed and not recorded: the other node must send it.
        orphaned = leased_by(world, "kill-a")
        killed_with = len(load.accepted)
        for thread in threads:
            thread.join(600)
        assert len(load.accepted) == CRASH_MESSAGES and killed_with < CRASH_MESSAGES
        accepted = {ref_of(reply) for reply in load.accepted.values()}
        # A message the killed relay had decided, but not yet answered, when it died: its
        # client got no 250 and sent it again, and the decided copy leaves as well (the
        # at-least-once window SMTP has on the way in). At most one a session.
        unanswered = set(orphaned.values()) - accepted
        assert orphaned and len(unanswered) <= SESSIONS

        wait_for(
            lambda: (
                {m.decision_ref for m in items_delivered(sink)} >= accepted
                and queue_drained(world.engine)
            ),
            "the surviving relay delivering everything",
            300,
        )
        delivered = items_delivered(sink)
        per_ref = Counter(m.decision_ref for m in delivered)
        assert set(per_ref) - unanswered == accepted  # every message that got a 250
        subjects = {m.decision_ref: str(m.message["Subject"]) for m in delivered}
        for ref in unanswered:  # ... whose client sent it again, and got a 250 for that
            assert subjects[ref] in {subjects[r] for r in accepted}
        # At least once: only what the killed node had on the wire, or sent and not yet
        # recorded (one of each per upstream connection at most), may have left twice.
        twice = {ref for ref, n in per_ref.items() if n > 1}
        assert twice <= set(orphaned.values()) and len(twice) <= 2 * CONNECTIONS
        assert max(per_ref.values()) <= 2
        by_survivor = {m.decision_ref for m in delivered if m.helo == "kill-b"}
        assert set(orphaned.values()) <= by_survivor
        with world.engine.connect() as conn:
            states = set(
                conn.execute(
                    select(OutboundMessage.state).where(OutboundMessage.id.in_(orphaned))
                ).scalars()
            )
        assert states == {"delivered"}
        assert problems_in(survivor.log()) == []
    finally:
        survivor.stop()
        if doomed.process is not None and doomed.process.poll() is None:
            doomed.kill()
        sink.stop()


def leased_by(world: World, node: str) -> dict[int, str]:
    """Outbound rows a node holds leased and unsent: row id -> the item's ref."""
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(OutboundMessage.id, Item.ref)
            .join(Item, Item.id == OutboundMessage.item_id)
            .where(
                OutboundMessage.state == "sending",
                OutboundMessage.lease_owner.like(f"{node}/%"),
            )
        )
        return {r.id: r.ref for r in rows}


def test_a_second_relay_under_a_node_name_in_use_is_refused(world: World) -> None:
    engines = [create_engine(world.database_url) for _ in range(2)]
    first, second = (NodeLock(e, "twin") for e in engines)
    try:
        first.acquire(wait=0)
        with pytest.raises(NodeNameTaken, match="own node_name"):
            second.acquire(wait=0)
        assert first.check()
        first.release()  # the name is free again once its holder stops
        second.acquire(wait=0)
        assert second.check()
    finally:
        first.release()
        second.release()
        for engine in engines:
            engine.dispose()


def test_the_two_node_haproxy_example_is_valid(tmp_path: Path) -> None:
    haproxy = need_program("haproxy")
    cert, key = write_self_signed(tmp_path / "tls")
    pem = tmp_path / "gatekeeper.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    config = (REPO / "deploy" / "two-node" / "haproxy.cfg").read_text()
    assert "/etc/haproxy/certs/gatekeeper.pem" in config
    checked = tmp_path / "haproxy.cfg"
    checked.write_text(config.replace("/etc/haproxy/certs/gatekeeper.pem", str(pem)))
    result = subprocess.run(
        [haproxy, "-c", "-f", str(checked)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
