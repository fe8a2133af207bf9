"""The delivery queue shared by relay nodes: a row is leased to one node at a time."""

from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy import Engine, select

from gatekeeper.config import Settings
from gatekeeper.quarantine import Quarantine
from gatekeeper.smtp.notices import NoticeWriter
from gatekeeper.smtp.outbound import OutboundQueue, Reply, Result, enqueue
from gatekeeper.store.correspondence import OutboundKind, OutboundMessage

ROWS = 200


def test_two_nodes_claiming_at_once_never_take_the_same_row(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue(
            conn,
            kind=OutboundKind.NOTICE,
            mail_from="",
            recipients=[f"r{n}@example.org" for n in range(ROWS)],
            lifetime=dt.timedelta(hours=1),
            raw=b"Subject: x\r\n\r\nx\r\n",
            quarantine=Quarantine.for_store(Settings(), engine),
        )
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def node(name: str) -> None:
        queue = OutboundQueue(engine, Settings(), name, NoticeWriter("gk@example.org", name))
        start.wait()
        while True:
            with engine.begin() as conn:
                _, rows = queue.claim(conn, limit=7)
            if not rows:
                return
            claimed[name].extend(r.id for r in rows)

    threads = [threading.Thread(target=node, args=(n,)) for n in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not set(claimed["a"]) & set(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == ROWS


def test_a_lapsed_lease_passes_to_another_node_and_the_first_can_no_longer_settle(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        enqueue(  # rows only: the queue's leases never look at what is to be sent
            conn,
            kind=OutboundKind.ITEM,
            mail_from="a.jones@gatekeeper.example",
            recipients=[f"r{n}@example.org" for n in range(3)],
            lifetime=dt.timedelta(hours=1),
        )
    short = Settings(delivery_lease_seconds=0.5)
    a, b = (OutboundQueue(engine, short, n, NoticeWriter("gk@example.org", n)) for n in "ab")
    with engine.begin() as conn:
        token_a, rows = a.claim(conn)
    with engine.begin() as conn:
        assert b.claim(conn)[1] == []  # leased: not b's to take
        assert a.renew(conn, token_a) == 3  # a is still at work on them
    time.sleep(0.6)  # a stops renewing (it died): the lease runs out
    with engine.begin() as conn:
        token_b, taken = b.claim(conn)
    assert sorted(d.id for d in taken) == sorted(d.id for d in rows)
    with engine.begin() as conn:
        assert a.renew(conn, token_a) == 0  # a, were it alive, would learn it lost them
        a.record(conn, token_a, [Result(d, Reply(250, "ok")) for d in rows], {})
    with engine.connect() as conn:
        owners = set(conn.execute(select(OutboundMessage.lease_owner)).scalars())
    assert owners == {token_b}  # a's late results change nothing
    with engine.begin() as conn:
        assert b.release(conn, token_b) == 3  # b stopping: put back for anyone, untried
    with engine.connect() as conn:
        left = conn.execute(select(OutboundMessage.state, OutboundMessage.attempts)).all()
    assert {tuple(r) for r in left} == {("queued", 1)}


def test_a_claim_takes_at_most_its_batch_and_leaves_the_rest_to_other_nodes(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        enqueue(
            conn,
            kind=OutboundKind.ITEM,
            mail_from="a.jones@gatekeeper.example",
            recipients=[f"r{n}@example.org" for n in range(6)],
            lifetime=dt.timedelta(hours=1),
        )
    a, b = (OutboundQueue(engine, Settings(), n, NoticeWriter("gk@example.org", n)) for n in "ab")
    with engine.connect() as first:
        with first.begin():
            _, mine = a.claim(first, limit=2)
            if engine.dialect.name == "postgresql":  # while a's claim is open, b goes on
                with engine.begin() as second:
                    _, theirs = b.claim(second, limit=2)
        if engine.dialect.name != "postgresql":  # SQLite: one writer at a time
            with engine.begin() as second:
                _, theirs = b.claim(second, limit=2)
    assert len(mine) == len(theirs) == 2
    assert not {d.id for d in mine} & {d.id for d in theirs}
