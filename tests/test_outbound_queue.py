"""The delivery queue shared by relay nodes: a row is leased to one node at a time."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine

from gatekeeper.config import Settings
from gatekeeper.smtp.notices import NoticeWriter
from gatekeeper.smtp.outbound import OutboundQueue, enqueue
from gatekeeper.store.correspondence import OutboundKind

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
