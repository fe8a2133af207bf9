"""Audit writers for the concurrency test, in a module of their own: each runs in a fresh
process (as every relay and web node does), which imports only what appending needs."""

from __future__ import annotations

import threading
from typing import Any

from gatekeeper.audit import record_audit
from gatekeeper.audit.chain import deferred_audit
from gatekeeper.store import create_store_engine


def append_events(
    url: str, writer: int, threads: int, each: int, start: Any, *, group: int = 1
) -> None:
    """One node: `threads` threads each appending `each` events, one transaction apiece, or
    (`group` > 1) `group` to a transaction, chained at its end as the relay's writer does."""
    engine = create_store_engine(url)

    def thread(n: int) -> None:
        start.wait()
        for first in range(0, each, group):
            with engine.begin() as conn:
                if group == 1:
                    record_audit(conn, "test.append", actor=f"w{writer}.{n}", details={"i": first})
                    continue
                with deferred_audit(conn):
                    for i in range(first, min(each, first + group)):
                        record_audit(conn, "test.append", actor=f"w{writer}.{n}", details={"i": i})

    running = [threading.Thread(target=thread, args=(n,)) for n in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    engine.dispose()
