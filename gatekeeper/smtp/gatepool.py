"""The gate, run in worker processes, under a time limit.

The gate's work is CPU-bound Python (parsing, the language pipeline, checks):
in a thread it would hold the GIL against the event loop, and a message that
sends it into a long computation could not be stopped. So each worker is a
process with its own gate (case index, pipeline, policy loaded once); a request
that outlives its time limit gets its worker killed and replaced, and the relay
answers 451 while it keeps serving everyone else.

The relay talks to its workers over their pipes from the event loop itself (the
pipe is a socket pair; `multiprocessing`'s framing: a 4-byte length, then the
pickle), so a request costs no thread hand-off in the relay. A worker is sent its
next request before it answers the current one (`gate_pipeline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from gatekeeper.config import Settings
from gatekeeper.decision import Decision
from gatekeeper.smtp.affinity import spread_over
from gatekeeper.smtp.waitline import WaitLine

log = logging.getLogger(__name__)

# A worker loads the spaCy pipeline and the whole case index before it is ready.
STARTUP_LIMIT_SECONDS = 600.0


class GateUnavailable(Exception):
    """The gate gave no decision; the message is one line a client may see."""


@dataclass(frozen=True)
class GateRequest:
    raw: bytes
    sender: str | None
    envelope_recipients: tuple[str, ...]


@dataclass(frozen=True)
class GateOutcome:
    decision: Decision
    # Seconds spent per stage inside the worker: parse, and the gate's own timings.
    stages: dict[str, float] = field(default_factory=dict)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _serve(conn: Connection, settings: Settings, cpus: frozenset[int] | None = None) -> None:
    """A worker process: build the gate once, then answer requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the relay decides when workers stop
    spread_over(cpus)  # started by the relay's pinned threads: use every CPU it was given
    try:
        from gatekeeper.gate import Gate
        from gatekeeper.mail import item_from_email
        from gatekeeper.store import open_store

        engine = open_store(settings.effective_database_url, migrate_empty=False)
        gate = Gate.from_store(engine, settings)
        engine.dispose()
    except Exception as exc:
        conn.send(("failed", _one_line(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request: GateRequest = conn.recv()
        except (EOFError, OSError):
            return
        try:
            started = time.perf_counter()
            item = item_from_email(
                request.raw,
                sender=request.sender,
                envelope_recipients=list(request.envelope_recipients),
                original_path=None,
            )
            parsed = time.perf_counter()
            decision = gate.check(item)
            stages = {"parse": parsed - started}
            stages.update({k: v / 1000 for k, v in decision.timings_ms.items() if k != "total"})
            reply: tuple[str, Any] = ("ok", GateOutcome(decision, stages))
        except Exception as exc:
            log.exception("gate failed")
            reply = ("error", _one_line(exc))
        conn.send(reply)


# Replies are small (a decision); requests are messages, up to `data_size_limit`.
_STREAM_LIMIT = 1024 * 1024

# A worker that has been on one message this long gets no further one queued behind it:
# the message may be a long text, and another worker is likely to come free sooner.
QUEUE_BEHIND_SECONDS = 0.25


class _Redispatch(Exception):
    """The worker a request waited on stopped before beginning it: send it to another."""


@dataclass(eq=False)
class _Sent:
    """A request written to a worker's pipe, and the caller's future for its reply."""

    reply: asyncio.Future[tuple[str, Any]]
    timeout: float
    began: float | None = None  # when the worker began it (loop time); None while it waits


class _Worker:
    """One gate process and the parent's end of its pipe.

    Requests are answered in the order they were written, so `pending` pairs each reply
    with its caller: the first is the one the worker is checking, the rest wait in the pipe.
    """

    def __init__(
        self,
        context: Any,
        settings: Settings,
        number: int,
        generation: int,
        cpus: frozenset[int] | None = None,
    ) -> None:
        self.number = number
        self.generation = generation  # which load of the case record this gate holds
        self.conn, child = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_serve,
            args=(child, settings, cpus),
            name=f"gatekeeper-gate-{number}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: deque[_Sent] = deque()
        self.watch: asyncio.TimerHandle | None = None  # the time limit of pending[0]
        self.replies: asyncio.Task[None] | None = None  # reads the replies into `pending`
        self.leaving = False  # retired or stopping: takes no further request
        self.answered = 0
        self.renewing = False  # a fresh worker is starting to take over from this one
        self.worn = False  # its successor is ready: it finishes what it holds, then stops

    async def attach(self) -> None:
        """Talk to the (ready) worker from the event loop from now on."""
        sock = socket.socket(fileno=os.dup(self.conn.fileno()))
        self.reader, self.writer = await asyncio.open_unix_connection(
            sock=sock, limit=_STREAM_LIMIT
        )

    def detach(self) -> None:
        """Stop talking to the worker from the event loop (call on the loop)."""
        if self.watch is not None:
            self.watch.cancel()
        if self.replies is not None and self.replies is not asyncio.current_task():
            self.replies.cancel()
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    def write(self, data: bytes) -> None:
        """Frame a pickled request as `multiprocessing.Connection` does: 4-byte length, data.

        Not drained: the transport buffers what the pipe cannot take yet, and the reply
        cannot come before the worker has read all of it."""
        if self.writer is None:
            raise EOFError("the worker's pipe is closed")
        size = len(data)
        header = struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size)
        self.writer.write(header + data if size <= 16384 else header)
        if size > 16384:
            self.writer.write(data)

    async def read(self) -> tuple[str, Any]:
        """The next reply from the worker."""
        if self.reader is None:
            raise EOFError("the worker's pipe is closed")
        (size,) = struct.unpack("!i", await self.reader.readexactly(4))
        if size == -1:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        result: tuple[str, Any] = pickle.loads(await self.reader.readexactly(size))
        return result

    def wait_ready(self) -> None:
        if not self.conn.poll(STARTUP_LIMIT_SECONDS):
            raise GateUnavailable("a gate worker did not start in time")
        try:
            status, detail = self.conn.recv()
        except EOFError:
            raise GateUnavailable("a gate worker stopped while starting") from None
        if status != "ready":
            raise GateUnavailable(f"the gate cannot start: {detail}")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class GatePool:
    """`size` gate worker processes, each sent up to `depth` requests at once.

    A worker is sent its next message while it still checks the current one, so it goes
    straight on to it: between messages the relay's own work would otherwise run on its
    CPU and leave its caches cold. Each message is under its time limit from when its
    worker begins it; a worker that runs over is killed and replaced, and the messages
    waiting behind it go to another worker.
    """

    def __init__(
        self,
        settings: Settings,
        size: int,
        *,
        cpus: frozenset[int] | None = None,
    ) -> None:
        self.settings = settings
        self.cpus = cpus  # where the workers run (None: where the relay's threads do)
        self.size = max(1, size)
        self.depth = max(1, settings.gate_pipeline)
        # spawn, not fork: the relay has threads, an event loop and database connections.
        self._context = multiprocessing.get_context("spawn")
        # Starting (and stopping) a whole new set of workers while the old ones still serve.
        self._threads = ThreadPoolExecutor(2 * self.size + 2, thread_name_prefix="gate-start")
        self._all: set[_Worker] = set()
        self._waiting = WaitLine()  # callers waiting for room in a worker
        self._numbers = iter(range(1, 1_000_000))
        self._replacing: set[asyncio.Future[Any]] = set()  # stops and replacements under way
        self.closed = False
        self.generation = 0

    @property
    def ready(self) -> int:
        """Workers able to take a request now or when their current one ends."""
        return len(self._all)

    @property
    def in_flight(self) -> int:
        """Requests sent to workers and not yet answered."""
        return sum(len(w.pending) for w in self._all)

    @property
    def waiting(self) -> int:
        """Requests waiting for room in a worker."""
        return len(self._waiting)

    async def start(self) -> None:
        """Start every worker and wait until each has loaded its gate."""
        await asyncio.gather(*(self._add_worker() for _ in range(self.size)))

    async def _started(self, generation: int) -> _Worker:
        """A new worker, its gate loaded."""
        loop = asyncio.get_running_loop()
        worker = await loop.run_in_executor(
            self._threads,
            _Worker,
            self._context,
            self.settings,
            next(self._numbers),
            generation,
            self.cpus,
        )
        try:
            await loop.run_in_executor(self._threads, worker.wait_ready)
            await worker.attach()
        except BaseException:
            worker.detach()
            await loop.run_in_executor(self._threads, worker.stop)
            raise
        return worker

    def _enlist(self, worker: _Worker) -> None:
        if self.closed:
            worker.detach()
            worker.process.kill()
            return
        if worker.generation != self.generation:  # started before a reload finished
            self._stop(worker)
            return
        self._all.add(worker)
        worker.replies = asyncio.get_running_loop().create_task(self._read_replies(worker))
        for _ in range(self.depth):
            self._waiting.wake_one()

    async def _add_worker(self) -> None:
        self._enlist(await self._started(self.generation))

    async def reload(self) -> None:
        """Fresh gates for a changed case record: a new set of workers takes over once all are
        ready, and the old ones stop once they have answered what they hold. If the new set
        cannot start, the old one keeps serving."""
        generation = self.generation + 1
        started = await asyncio.gather(
            *(self._started(generation) for _ in range(self.size)), return_exceptions=True
        )
        fresh = [w for w in started if isinstance(w, _Worker)]
        if len(fresh) < len(started):
            loop = asyncio.get_running_loop()
            for worker in fresh:
                worker.detach()
            await asyncio.gather(*(loop.run_in_executor(self._threads, w.stop) for w in fresh))
            failure = next(e for e in started if not isinstance(e, _Worker))
            raise GateUnavailable(f"could not reload the gate: {failure}")
        self.generation = generation
        for worker in list(self._all):
            if not worker.pending:
                self._stop(worker)
        for worker in fresh:
            self._enlist(worker)

    def _stop(self, worker: _Worker) -> None:
        """Let a worker with nothing in hand go (out of date, worn, or not needed)."""
        worker.leaving = True
        self._all.discard(worker)
        worker.detach()
        self._track(asyncio.get_running_loop().run_in_executor(self._threads, worker.stop))

    def _track(self, task: asyncio.Future[Any]) -> None:
        """Keep a stop or replacement under way (`close` cancels what has not finished)."""
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    def _choose(self) -> _Worker | None:
        """The current worker with the fewest requests, if one has room for another."""
        now = asyncio.get_running_loop().time()
        chosen: _Worker | None = None
        for worker in self._all:
            held = len(worker.pending)
            if not self._serving(worker) or held >= self.depth:
                continue
            if held and now - (worker.pending[0].began or now) > QUEUE_BEHIND_SECONDS:
                continue
            if chosen is None or held < len(chosen.pending):
                chosen = worker
        return chosen

    async def _room(self, deadline: float) -> _Worker:
        """A worker to send a request to, waiting for one until `deadline`."""
        while (worker := self._choose()) is None:
            waiter = self._waiting.join()
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                if waiter.done() and not waiter.cancelled():
                    self._waiting.wake_one()  # woken as time ran out: the room goes on
                self._waiting.leave(waiter)
                raise GateUnavailable("the checking service is busy") from None
        return worker

    def _send(self, worker: _Worker, data: bytes, timeout: float) -> _Sent:
        sent = _Sent(asyncio.get_running_loop().create_future(), timeout)
        worker.write(data)
        worker.pending.append(sent)
        if len(worker.pending) == 1:
            self._begin(worker)
        return sent

    def _begin(self, worker: _Worker) -> None:
        """The worker begins its first pending request: its time limit starts now."""
        loop = asyncio.get_running_loop()
        head = worker.pending[0]
        head.began = loop.time()
        worker.watch = loop.call_at(head.began + head.timeout, self._overran, worker)

    async def _read_replies(self, worker: _Worker) -> None:
        """Hand each reply to its caller, until the worker stops."""
        try:
            while True:
                reply = await worker.read()
                if worker.watch is not None:
                    worker.watch.cancel()
                answered = worker.pending.popleft()
                if not answered.reply.done():  # else its caller gave up waiting
                    answered.reply.set_result(reply)
                worker.answered += 1
                share = self.settings.gate_worker_messages
                if share and worker.answered >= share and not worker.renewing:
                    self._renew(worker)
                if worker.pending:
                    self._begin(worker)
                elif not self._serving(worker):
                    self._stop(worker)
                    return
                self._waiting.wake_one()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not worker.leaving:
                log.error("a gate worker stopped: %s", _one_line(exc))
                self._retire(worker, GateUnavailable("the checking service restarted"))

    def _serving(self, worker: _Worker) -> bool:
        """Whether `worker` takes new requests: it holds the newest gate and has work left."""
        return not (worker.leaving or worker.worn or worker.generation != self.generation)

    def _renew(self, worker: _Worker) -> None:
        """Start a fresh worker to take over from one that has answered its share: spaCy's
        pools keep a little of every message, so a worker's memory grows with what it reads.
        The old one serves on until the fresh one is ready."""
        worker.renewing = True
        log.info("a gate worker answered %d messages; starting a fresh one", worker.answered)
        self._track(asyncio.get_running_loop().create_task(self._take_over(worker)))

    async def _take_over(self, worker: _Worker) -> None:
        try:
            fresh = await self._started(self.generation)
        except GateUnavailable as exc:
            log.error("could not start a fresh gate worker: %s", exc)
            worker.renewing = False
            worker.answered = 0  # it serves on; try again after another share
            return
        if not self._serving(worker):  # it was replaced meanwhile (time limit, reload)
            self._stop(fresh)
            return
        worker.worn = True
        if not worker.pending:
            self._stop(worker)
        self._enlist(fresh)

    def _overran(self, worker: _Worker) -> None:
        log.warning("a gate worker ran over its time limit; replacing it")
        self._retire(worker, GateUnavailable("checking took longer than the time limit"))

    async def check(self, request: GateRequest, timeout: float) -> GateOutcome:
        """The gate's decision, or `GateUnavailable` (busy, too slow, or failed)."""
        deadline = asyncio.get_running_loop().time() + timeout
        data = pickle.dumps(request, pickle.HIGHEST_PROTOCOL)
        while True:
            worker = await self._room(deadline)
            sent = self._send(worker, data, timeout)
            try:
                async with asyncio.timeout_at(deadline):
                    status, detail = await sent.reply
            except TimeoutError:
                raise GateUnavailable("checking took longer than the time limit") from None
            except _Redispatch:
                continue
            break
        if status != "ok":
            raise GateUnavailable(f"the check failed ({detail})")
        outcome: GateOutcome = detail
        return outcome

    def _retire(self, worker: _Worker, reason: GateUnavailable) -> None:
        """Kill `worker`: its current request fails with `reason`, the ones waiting behind it
        go to another worker; another starts in its place unless the pool is closing."""
        worker.leaving = True
        self._all.discard(worker)
        worker.detach()
        worker.process.kill()
        _fail_pending(worker, reason, _Redispatch())
        self._track(asyncio.get_running_loop().create_task(self._replace(worker)))

    async def _replace(self, worker: _Worker) -> None:
        await asyncio.get_running_loop().run_in_executor(self._threads, worker.stop)
        if self.closed or worker.generation != self.generation:
            return  # a worker of an older record is not replaced: the newer set is full
        try:
            await self._add_worker()
        except GateUnavailable as exc:
            log.error("could not replace a gate worker: %s", exc)

    async def close(self) -> None:
        self.closed = True
        for task in list(self._replacing):
            task.cancel()
        loop = asyncio.get_running_loop()
        stopping = GateUnavailable("the relay is stopping")
        for worker in self._all:
            worker.leaving = True
            worker.detach()
            _fail_pending(worker, stopping, stopping)
        await asyncio.gather(
            *(loop.run_in_executor(self._threads, w.stop) for w in self._all),
            return_exceptions=True,
        )
        self._all.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)


def _fail_pending(worker: _Worker, current: Exception, behind: Exception) -> None:
    """Answer every caller still waiting on `worker`: the one it was checking with `current`,
    those waiting in its pipe with `behind`."""
    for place, sent in enumerate(worker.pending):
        if not sent.reply.done():
            sent.reply.set_exception(current if place == 0 else behind)
    worker.pending.clear()
