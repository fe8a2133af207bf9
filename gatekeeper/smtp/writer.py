"""Group commit: one thread writes for every SMTP session and delivery worker of a relay.

A reply of 250 waits for a durable commit, and a durable commit waits for the
disk (an fsync). Committing each session's write alone makes every message pay
for its own fsync, in turn, behind SQLite's single write lock. Here writes
queue up while the previous group is being committed, and go to disk together:
one fsync for all of them, no lock contention inside the process. A group that
fails is retried job by job, so one bad write never fails the others. The thread
keeps one connection open (a pool checkout and reset per group cost as much as
the writes themselves) and opens another after any failure.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from gatekeeper.audit.chain import deferred_audit

log = logging.getLogger(__name__)

T = TypeVar("T")
# Enough to amortise a disk sync; small enough that one group's transaction stays short.
MAX_GROUP = 64

_Job = tuple[Callable[[Connection], Any], "Future[Any]"]


class StoreWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn: Connection | None = None  # used by the writer thread only
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()
        self.groups = 0
        self.jobs = 0

    def submit(self, job: Callable[[Connection], T]) -> Future[T]:
        """Queue `job(conn)` for the next group; the future holds its result once committed."""
        done: Future[T] = Future()
        self._jobs.put((job, done))
        return done

    async def write(self, job: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`job(conn, *args, **kwargs)` in the next group commit, awaited off the event loop."""
        return await asyncio.wrap_future(self.submit(lambda conn: job(conn, *args, **kwargs)))

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < MAX_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
            self._commit(group)
            if stopping:
                return

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        """After a failure: the connection may be broken, so the next write opens another."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing a failed store connection", exc_info=True)
            self._conn = None

    def _transaction(self, jobs: list[_Job]) -> list[Any]:
        conn = self._connection()
        try:
            # The group's audit events are chained at its end: the chain's head is held
            # for the commit alone, not from the group's first event on.
            with conn.begin(), deferred_audit(conn):
                return [job(conn) for job, _ in jobs]
        except BaseException:
            self._drop_connection()
            raise

    def _commit(self, group: list[_Job]) -> None:
        self.groups += 1
        self.jobs += len(group)
        try:
            results = self._transaction(group)
        except Exception:
            for job in group:  # find the one that fails; the rest commit
                self._alone(job)
            return
        for (_, done), result in zip(group, results, strict=True):
            done.set_result(result)

    def _alone(self, job: _Job) -> None:
        done = job[1]
        try:
            (result,) = self._transaction([job])
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(result)

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        self._jobs.put(None)
        self._thread.join(60)
        if not self._thread.is_alive():
            self._drop_connection()
