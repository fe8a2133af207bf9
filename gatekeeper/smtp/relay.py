"""`Relay`: the whole service wired together, started and stopped in order.

Start: the store (writes made durable), crash recovery, the gate workers
(ready before the port opens, so no client is told 451 for a cold start), the
SMTP listener, the delivery workers, then the health and metrics page. Stop:
the listener first, then let messages in flight get their reply, then the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select

from gatekeeper.config import ConfigError, Settings
from gatekeeper.smtp.auth import StaffDirectory
from gatekeeper.smtp.gatepool import GatePool
from gatekeeper.smtp.intake import Intake
from gatekeeper.smtp.metrics import HealthServer, RelayMetrics
from gatekeeper.smtp.nodes import NodeLock
from gatekeeper.smtp.notices import node_name, notice_writer
from gatekeeper.smtp.outbound import DeliveryWorker, Doorbell, OutboundQueue
from gatekeeper.smtp.server import (
    RelayHandler,
    RelaySMTP,
    TrustedNetworks,
    protocol_factory,
    tls_context,
)
from gatekeeper.smtp.throttle import AuthThrottle
from gatekeeper.smtp.writer import StoreWriter
from gatekeeper.store import open_store
from gatekeeper.store.models import Case, StaffUser

log = logging.getLogger(__name__)

DEPTH_SECONDS = 5.0
STOP_DELIVERY_SECONDS = 10.0
# How long a trusted sender's staff record (team) is reused before it is read again.
STAFF_CACHE_SECONDS = 60.0
# Threads for the store's reads and argon2 checks (writes go through the StoreWriter).
STORE_THREADS = 16


def _full_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # In WAL mode NORMAL may lose the last commits on power loss; a 250 must not.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def open_durable_store(url: str) -> Engine:
    """The store, with every commit on SQLite synced to disk before it returns."""
    engine = open_store(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _full_sync)
        engine.dispose()  # connections opened before the listener are not synced
    return engine


def record_version(engine: Engine) -> tuple[Any, ...]:
    """What changes when the case record or the staff list does (imports stamp each case)."""
    with engine.connect() as conn:
        cases = conn.execute(select(func.count(), func.max(Case.imported_at))).one()
        staff = conn.execute(select(func.count(), func.max(StaffUser.id))).one()
    return (*cases, *staff)


def check_settings(settings: Settings) -> None:
    """Refuse to start on settings that cannot work, with one line saying which."""
    if not settings.upstream_host:
        raise ConfigError("set upstream_host: the MTA the relay delivers to")
    for name in ("tls_cert_file", "tls_key_file"):
        path = getattr(settings, name)
        if path and not Path(path).is_file():
            raise ConfigError(f"{name} {path} does not exist")
    if settings.tls_key_file and not settings.tls_cert_file:
        raise ConfigError("tls_key_file is set but tls_cert_file is not")
    for name in ("trusted_networks", "relay_proxies"):
        try:
            TrustedNetworks(getattr(settings, name))
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    if settings.data_size_limit <= 0 or settings.gate_timeout <= 0:
        raise ConfigError("data_size_limit and gate_timeout must be greater than 0")
    if settings.relay_auth_failures < 0 or settings.relay_auth_window_seconds <= 0:
        raise ConfigError(
            "relay_auth_failures must be 0 or more and relay_auth_window_seconds greater than 0"
        )


class Relay:
    def __init__(self, settings: Settings, *, gate_cpus: frozenset[int] | None = None) -> None:
        check_settings(settings)
        self.settings = settings
        self.gate_cpus = gate_cpus  # CPUs for the gate workers (None: as started)
        self.node = node_name(settings)
        self.metrics = RelayMetrics()
        self.wake = Doorbell()
        self.store = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="store")
        self.sessions: set[RelaySMTP] = set()
        self.store_ok = True
        self.listening = False
        self._tasks: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None
        self._health: HealthServer | None = None
        self._workers: list[DeliveryWorker] = []
        self.gates: GatePool | None = None
        self.node_lock: NodeLock | None = None
        self.node_held = True
        self.handler: RelayHandler | None = None
        self.engine: Engine | None = None
        self.writer: StoreWriter | None = None
        self.queue: OutboundQueue | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        self.engine = engine = await loop.run_in_executor(
            self.store, open_durable_store, s.effective_database_url
        )
        self.writer = writer = StoreWriter(engine)
        notices = notice_writer(s)
        queue = OutboundQueue(engine, s, self.node, notices)
        self.gates = gates = GatePool(s, s.gate_workers or os.cpu_count() or 1, cpus=self.gate_cpus)
        # Read when /metrics is scraped: nothing to keep up to date per message.
        self.metrics.gate_messages.labels("in_worker").set_function(lambda: gates.in_flight)
        self.metrics.gate_messages.labels("waiting").set_function(lambda: gates.waiting)
        intake = Intake(
            engine,
            s,
            node=self.node,
            gates=self.gates,
            notices=notices,
            metrics=self.metrics,
            writer=writer,
            wake=self.wake,
            queue=queue,
        )
        self.queue = queue
        # Before taking back this node's work: no other live process may be this node.
        self.node_lock = NodeLock(engine, self.node)
        await loop.run_in_executor(self.store, self.node_lock.acquire)
        unanswered = await writer.write(intake.recover)
        released = await writer.write(queue.recover)
        if unanswered or released:
            log.info(
                "recovered after a stop",
                extra={"deferred_items": unanswered, "requeued_rows": released},
            )
        log.info("starting gate workers", extra={"workers": self.gates.size})
        version = await loop.run_in_executor(self.store, record_version, engine)
        await self.gates.start()
        self.metrics.gate_workers.set(self.gates.ready)
        tls = tls_context(s.tls_cert_file, s.tls_key_file) if s.tls_cert_file else None
        if tls is None:
            log.warning("no tls_cert_file: no STARTTLS, so no AUTH; only trusted networks relay")
        self.handler = RelayHandler(
            intake,
            directory=StaffDirectory(engine, cache_seconds=STAFF_CACHE_SECONDS),
            trusted=TrustedNetworks(s.trusted_networks),
            proxies=TrustedNetworks(s.relay_proxies),
            metrics=self.metrics,
            store=self.store,
            writer=writer,
            throttle=AuthThrottle(s.relay_auth_failures, s.relay_auth_window_seconds),
        )
        factory = protocol_factory(
            self.handler,
            hostname=self.node,
            data_size_limit=s.data_size_limit,
            tls=tls,
            loop=loop,
            on_open=self._opened,
            on_close=self._closed,
            proxy_protocol=bool(s.relay_proxies),
        )
        self._server = await loop.create_server(factory, s.relay_host, s.relay_port)
        self.listening = True
        for number in range(max(1, s.upstream_connections)):
            worker = DeliveryWorker(
                queue,
                writer=writer,
                store=self.store,
                wake=self.wake,
                metrics=self.metrics,
                number=number,
            )
            self._workers.append(worker)
            self._tasks.append(loop.create_task(worker.run(), name=f"delivery-{number}"))
        self._tasks.append(loop.create_task(self._watch_depth(queue)))
        if s.record_refresh_seconds > 0:
            self._tasks.append(loop.create_task(self._watch_record(engine, version)))
        if s.metrics_port:
            self._health = HealthServer(self.metrics, self.problems)
            await self._health.start(s.relay_host, s.metrics_port)
        log.info(
            "relay listening",
            extra={
                "host": s.relay_host,
                "port": self.port,
                "node": self.node,
                "tls": tls is not None,
            },
        )

    def _opened(self, session: RelaySMTP) -> None:
        self.sessions.add(session)
        self.metrics.sessions.set(len(self.sessions))

    def _closed(self, session: RelaySMTP) -> None:
        self.sessions.discard(session)
        self.metrics.sessions.set(len(self.sessions))

    def problems(self) -> list[str]:
        """Why the relay cannot take mail now; empty when it can."""
        found = []
        if not self.listening:
            found.append("not listening")
        if self.gates is None or self.gates.ready == 0:
            found.append("no gate worker ready")
        if not self.node_held:
            found.append(f"node name {self.node} is not held")
        if not self.store_ok:
            found.append("the store does not answer")
        return found

    async def _watch_depth(self, queue: OutboundQueue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                depth = await loop.run_in_executor(self.store, queue.depth)
                for state, count in depth.items():
                    self.metrics.queue_depth.labels(state).set(count)
                self.store_ok = True
            except Exception as exc:
                self.store_ok = False
                log.error("store check failed: %s", exc)
            if self.node_lock is not None:
                self.node_held = await loop.run_in_executor(self.store, self.node_lock.check)
            if self.gates is not None:
                self.metrics.gate_workers.set(self.gates.ready)
            await asyncio.sleep(DEPTH_SECONDS)

    async def _watch_record(self, engine: Engine, version: tuple[Any, ...]) -> None:
        """Reload the gate workers when the case record or the staff list changes."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.record_refresh_seconds)
            try:
                now = await loop.run_in_executor(self.store, record_version, engine)
                if now != version and self.gates is not None:
                    await self.gates.reload()
                    version = now
                    log.info("reloaded the case record", extra={"record": [str(v) for v in now]})
            except Exception as exc:
                log.error("could not reload the case record: %s", exc)

    async def stop(self) -> None:
        """Stop taking mail, let messages in flight get their reply, then stop the rest."""
        loop = asyncio.get_running_loop()
        self.listening = False
        if self._server is not None:
            self._server.close()
        if self.handler is not None:
            deadline = loop.time() + self.settings.gate_timeout + 5
            while self.handler.active and loop.time() < deadline:
                await asyncio.sleep(0.05)
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        for worker in self._workers:
            worker.stopping = True
        self.wake.set_all()
        delivering = [t for t in self._tasks if t.get_name().startswith("delivery")]
        if delivering:
            # The message on the wire finishes and is recorded; the rest of its batch is put
            # back for any node. A worker that does not finish in time is re-leased later.
            await asyncio.wait(delivering, timeout=STOP_DELIVERY_SECONDS)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._give_back()
        if self._health is not None:
            await self._health.close()
        if self.gates is not None:
            await self.gates.close()
        if self.writer is not None:
            await loop.run_in_executor(None, self.writer.close)
        if self.node_lock is not None:
            self.node_lock.release()
        self.store.shutdown(wait=True, cancel_futures=True)
        if self.engine is not None:
            self.engine.dispose()
        log.info("relay stopped")

    async def _give_back(self) -> None:
        """Released messages no worker took in hand: their rows are put back, for any node
        to claim at once (after a crash, this node's restart or the lease's end does it)."""
        if self.writer is None or self.queue is None:
            return
        for handoff in self.wake.left():
            try:
                await self.writer.write(self.queue.release, handoff.token)
            except Exception:
                log.exception("could not put back a delivery; its lease will run out")

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            await self.stop()
