"""The web app's Prometheus metrics: requests, decisions, and the queue as it stands."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WebMetrics:
    """One registry per app, so tests can build several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gatekeeper_web_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "gatekeeper_web_request_seconds",
            "Time to answer a request.",
            ["route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "gatekeeper_web_decisions",
            "Decisions made in the approval pages.",
            ["action"],
            registry=r,
        )
        self.refusals = Counter(
            "gatekeeper_web_refusals", "Requests refused, by reason.", ["reason"], registry=r
        )
        self.held = Gauge("gatekeeper_held_items", "Items waiting for a second check.", registry=r)
        self.oldest = Gauge(
            "gatekeeper_held_oldest_seconds", "Age of the oldest held item.", registry=r
        )
        self.sweeps = Counter(
            "gatekeeper_held_sweep_items", "Items the sweep acted on.", ["outcome"], registry=r
        )

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
