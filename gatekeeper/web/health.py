"""`/healthz` (200 when the store answers, else 503 with why) and `/metrics` (Prometheus)."""

from __future__ import annotations

from typing import cast

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Table, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatekeeper.smtp.outbound import aware
from gatekeeper.store.correspondence import Item, ItemState
from gatekeeper.web.context import WebContext, blocking, context_of, now

ITEMS = cast(Table, Item.__table__)


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def _problems(ctx: WebContext) -> list[str]:
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return [f"the store does not answer: {type(exc).__name__}"]
    return []


async def healthz(request: Request) -> Response:
    problems = await blocking(_problems, context_of(request))
    return JSONResponse({"ok": not problems, "problems": problems}, 503 if problems else 200)


def _queue_figures(ctx: WebContext) -> tuple[int, float]:
    with ctx.engine.connect() as conn:
        count, oldest = conn.execute(
            select(func.count(), func.min(ITEMS.c.received_at)).where(
                ITEMS.c.state == ItemState.HELD.value
            )
        ).one()
    return int(count), (now() - aware(oldest)).total_seconds() if oldest else 0.0


async def metrics(request: Request) -> Response:
    ctx = context_of(request)
    try:
        held, oldest = await blocking(_queue_figures, ctx)
        ctx.metrics.held.set(held)
        ctx.metrics.oldest.set(oldest)
    except SQLAlchemyError:
        pass  # the gauges keep their last values; /healthz says what is wrong
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
