"""The sender's own view: my held items and why, withdraw one, see what was decided."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatekeeper.held import DecisionRefused, HeldItem
from gatekeeper.review import DecisionRecord, decisions_of
from gatekeeper.web.auth import SIGNED_IN, Viewer
from gatekeeper.web.context import WebContext, blocking, context_of, now
from gatekeeper.web.routing import action, page, render

# How far back "my items" reaches.
HISTORY = dt.timedelta(days=30)


def routes() -> list[Route]:
    return [
        page("/mine", SIGNED_IN, mine_page, name="mine"),
        action("/mine/{ref}/withdraw", SIGNED_IN, withdraw),
    ]


@dataclass(frozen=True)
class MyItem:
    item: HeldItem
    age: float
    decision: DecisionRecord | None


def my_items(ctx: WebContext, viewer: Viewer) -> list[MyItem]:
    items = ctx.queue.sent_by(viewer.email, now() - HISTORY)
    decisions = decisions_of(ctx.engine, [i.id for i in items])
    moment = now()
    return [MyItem(i, (moment - i.received_at).total_seconds(), decisions.get(i.id)) for i in items]


async def mine_page(request: Request, viewer: Viewer, problem: str = "") -> Response:
    ctx = context_of(request)
    items = await blocking(my_items, ctx, viewer)
    await blocking(
        ctx.audit,
        "web.mine_viewed",
        actor=viewer.email,
        remote=viewer.remote,
        details={"shown": len(items)},
    )
    return render(
        request,
        viewer,
        "mine.html",
        {
            "items": items,
            "problem": problem,
            "done": request.query_params.get("withdrawn", "")[:16],
            "policy": ctx.queue.approval,
        },
        status_code=400 if problem else 200,
    )


async def withdraw(request: Request, viewer: Viewer, _form: FormData) -> Response:
    ctx = context_of(request)
    ref = request.path_params["ref"].upper()
    try:
        await blocking(ctx.queue.withdraw, ref, viewer.email, remote=viewer.remote)
    except DecisionRefused as refused:
        return await mine_page(request, viewer, problem=str(refused))
    ctx.metrics.decisions.labels("withdraw").inc()
    return RedirectResponse(f"/mine?withdrawn={ref}", status_code=303)
