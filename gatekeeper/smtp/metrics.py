"""The relay's health check and Prometheus metrics, served over plain HTTP.

`GET /healthz` answers 200 when the relay can take mail (listening, a gate
worker ready, the store answering), else 503, with the reasons as JSON.
`GET /metrics` is the Prometheus text format: verdicts, decision latency by
stage, the queue's depth, deliveries by outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class RelayMetrics:
    """One registry per relay, so tests and the demo can run several in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "gatekeeper_relay_messages",
            "Messages by what the relay answered.",
            ["outcome"],
            registry=r,
        )
        self.refusals = Counter(
            "gatekeeper_relay_refusals",
            "Commands refused before DATA, by reason.",
            ["reason"],
            registry=r,
        )
        self.latency = Histogram(
            "gatekeeper_relay_decision_seconds",
            "From the end of DATA to the reply: what the relay adds to a message.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "gatekeeper_relay_stage_seconds",
            "Time per stage of the decision (store, wait, parse, analysis, checks, decide).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "gatekeeper_outbound_queue_depth",
            "Outbound rows by state (every node).",
            ["state"],
            registry=r,
        )
        self.deliveries = Counter(
            "gatekeeper_outbound_deliveries",
            "Per-recipient delivery results.",
            ["outcome"],
            registry=r,
        )
        self.gate_workers = Gauge(
            "gatekeeper_gate_workers", "Gate worker processes ready.", registry=r
        )
        self.gate_messages = Gauge(
            "gatekeeper_gate_messages",
            "Messages at the gate: handed to a worker and not yet answered (in_worker), or"
            " waiting for room in one (waiting).",
            ["where"],
            registry=r,
        )
        self.sessions = Gauge("gatekeeper_relay_sessions", "Open SMTP sessions.", registry=r)

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data


class HealthServer:
    """A minimal HTTP/1.0 server for `/healthz` and `/metrics`: two read-only pages."""

    def __init__(self, metrics: RelayMetrics, problems: Callable[[], list[str]]) -> None:
        self.metrics = metrics
        self.problems = problems
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            if method != "GET":
                status, kind, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/metrics":
                status, kind, body = "200 OK", CONTENT_TYPE_LATEST, self.metrics.render()
            elif path == "/healthz":
                problems = self.problems()
                status = "200 OK" if not problems else "503 Service Unavailable"
                body = json.dumps({"ok": not problems, "problems": problems}).encode() + b"\n"
                kind = "application/json"
            else:
                status, kind, body = "404 Not Found", "text/plain", b"/healthz or /metrics\n"
            head = (
                f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
