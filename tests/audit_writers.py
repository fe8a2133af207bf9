"""Audit writers for the concurrency test, in a module of their own: each runs in a fresh
process (as every relay and web node does), which imports only what appending needs."""

from __future__ import annotations

import threading
from typing import Any

from gatekeeper.audit import record_audit
from gatekeeper.store import create_store_engine


def append_events(url: str, writer: int, threads: int, each: int, start: Any) -> None:
    """One node: `threads` threads each appending `each` events, one transaction apiece."""
    engine = create_store_engine(url)

    def thread(n: int) -> None:
        start.wait()
        for i in range(each):
            with engine.begin() as conn:
                record_audit(conn, "test.append", actor=f"w{writer}.{n}", details={"i": i})

    running = [threading.Thread(target=thread, args=(n,)) for n in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    engine.dispose()
