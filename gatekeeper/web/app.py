"""The approval web app: `create_app(settings, engine)` builds it; `gatekeeper web` serves it.

Middleware, outermost first: trusted-proxy resolution (who the client is, and
whether a sign-on header may be believed), security headers, request log and
metrics. Every page route checks sign-in and role itself (`routing.page`,
`routing.action`); the background sweep escalates and expires held items and
plants canaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatekeeper.config import Settings
from gatekeeper.held import HeldQueue
from gatekeeper.quarantine import QuarantineError
from gatekeeper.smtp.auth import StaffDirectory
from gatekeeper.store import open_store
from gatekeeper.web import audit, canaries, health, item, login, mine, queue, register, scan, users
from gatekeeper.web.auth import SIGNED_IN, SignOnRefused, Viewer, resolve_viewer
from gatekeeper.web.context import WebContext, make_templates
from gatekeeper.web.metrics import WebMetrics
from gatekeeper.web.proxy import TrustedProxies, networks
from gatekeeper.web.routing import error_page, page
from gatekeeper.web.security import SecurityHeaders
from gatekeeper.web.sessions import SessionCookies, session_secret

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings, engine: Engine | None = None, *, sweep: bool = True
) -> Starlette:
    """The web app on `engine` (else the store `settings` names); `sweep`: run the sweep."""
    engine = engine or open_store(settings.effective_database_url)
    metrics = WebMetrics()
    ctx = WebContext(
        settings=settings,
        engine=engine,
        queue=HeldQueue(engine, settings),
        directory=StaffDirectory(engine),
        cookies=SessionCookies(
            session_secret(engine, settings.web_secret_key), settings.web_session_minutes
        ),
        templates=make_templates(),
        metrics=metrics,
    )
    routes: list[BaseRoute] = [
        page("/", SIGNED_IN, home, name="home"),
        *login.routes(),
        *queue.routes(),
        *item.routes(),
        *mine.routes(),
        *scan.routes(),  # the postal room's scan before dispatch
        *canaries.routes(),
        *audit.routes(),
        *users.routes(),
        *register.routes(),
        *health.routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = None
        if sweep and settings.web_sweep_seconds > 0:
            task = asyncio.create_task(_sweep_forever(ctx))
        keeper = None  # the register's sync and daily retention
        if sweep and settings.register_sync_seconds > 0:
            keeper = asyncio.create_task(register.keep_register(ctx))
        try:
            yield
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedProxies, trusted=networks(settings.web_trusted_proxies)),
            Middleware(SecurityHeaders),
            Middleware(RequestLog, metrics=metrics),
        ],
        lifespan=lifespan,
        exception_handlers={QuarantineError: _unsealable},
    )
    app.state.gatekeeper = ctx
    return app


async def home(request: Request, viewer: Viewer) -> Response:
    """Checkers and governance start at the queue; everyone else at their own items."""
    return RedirectResponse("/queue" if viewer.may_queue else "/mine", status_code=303)


async def _unsealable(request: Request, exc: Exception) -> Response:
    """Sealed content this server's keyring cannot open: say so, and who can mend it."""
    log.error("sealed content could not be opened: %s", exc, extra={"path": request.url.path})
    try:
        viewer = await resolve_viewer(request)
    except SignOnRefused:
        viewer = None
    return error_page(
        request,
        viewer,
        503,
        "Sealed content cannot be opened here",
        f"This page shows content sealed in the store, and this server cannot open it: {exc}."
        " Nothing was changed. Ask an administrator to give the web app the store's keyring"
        " (quarantine_key_file or quarantine_keys; see `gatekeeper keys status`).",
        reason="unsealable",
    )


async def _sweep_forever(ctx: WebContext) -> None:
    from gatekeeper.sweep import HeldSweep

    sweeper = HeldSweep(ctx.engine, ctx.settings, queue=ctx.queue)
    while True:
        await asyncio.sleep(ctx.settings.web_sweep_seconds)
        try:
            report = await asyncio.to_thread(sweeper.run)
        except Exception:
            log.exception("the held-item sweep failed; it runs again next round")
            continue
        ctx.metrics.sweeps.labels("expired").inc(len(report.expired))
        ctx.metrics.sweeps.labels("escalated").inc(len(report.escalated))
        ctx.metrics.sweeps.labels("canary").inc(report.canaries)


class RequestLog:
    """One JSON log line and metric sample per request (never the query string: it has refs)."""

    def __init__(self, app: ASGIApp, metrics: WebMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = _route_name(scope)
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(route, str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(seconds)
            if route not in ("static", "metrics", "healthz"):
                client = scope.get("client")
                log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "route": route,
                        "status": status["code"],
                        "ms": round(seconds * 1000, 1),
                        "client": client[0] if client else None,
                    },
                )


def _route_name(scope: Scope) -> str:
    """A route's template (`/items/{ref}`), not the path: refs stay out of metric labels."""
    path = str(scope.get("path", ""))
    if path.startswith("/static/"):
        return "static"
    route = scope.get("route")
    template = getattr(route, "path", None)
    return str(template).strip("/") or "home" if template is not None else "other"
