"""The approval queue: held items oldest first, what each is about in one line, filters.

Items past the policy's escalation limit are marked (the sweep also tells the
team's checkers); the time left before an item returns to its sender unsent is
shown. The count refreshes itself (`/queue/count`, polled by the page's script).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatekeeper.checks.registry import registered_checks
from gatekeeper.contact import email_key
from gatekeeper.held import HeldItem
from gatekeeper.review import flags_of
from gatekeeper.store.approval import HeldFlag
from gatekeeper.web.auth import QUEUE, Viewer
from gatekeeper.web.context import WebContext, blocking, context_of, now
from gatekeeper.web.parties import related_case_ids
from gatekeeper.web.routing import page, render

# The queue's age chart: how long items have waited, in these bands.
AGE_BANDS = (
    ("under 15 min", 15 * 60),
    ("15-60 min", 3600),
    ("1-4 h", 4 * 3600),
    ("4-24 h", 24 * 3600),
    ("over a day", float("inf")),
)
FILTERS = ("team", "channel", "case", "check", "sender", "overdue")


def routes() -> list[Route]:
    return [
        page("/queue", QUEUE, queue_page, name="queue"),
        page("/queue/count", QUEUE, queue_count),
    ]


@dataclass(frozen=True)
class QueueRow:
    item: HeldItem
    age: float  # seconds since it was received
    overdue: bool
    expires_in: float | None  # seconds until it returns to the sender, if it will
    top: dict[str, Any] | None
    more: int
    own: bool

    @property
    def case(self) -> str:
        """The content's cases, else those the findings name (a look-alike's party's case)."""
        return ", ".join(related_case_ids(self.item)[:2]) or "-"


@dataclass(frozen=True)
class QueueView:
    rows: list[QueueRow]
    total: int
    overdue: int
    teams: list[str]
    chart: list[tuple[str, int, float]]  # band, count, bar length (0-100)


def _rows(ctx: WebContext, viewer: Viewer) -> list[QueueRow]:
    items = ctx.queue.waiting()
    flags = flags_of(ctx.engine, [i.id for i in items])
    policy = ctx.queue.approval
    moment = now()
    rows = []
    for item in items:
        age = (moment - item.received_at).total_seconds()
        limit = policy.escalate_after_minutes * 60
        overdue = HeldFlag.ESCALATED.value in flags.get(item.id, set()) or bool(
            limit and age >= limit
        )
        expiry = policy.expire_after_hours * 3600
        rows.append(
            QueueRow(
                item=item,
                age=age,
                overdue=overdue,
                expires_in=max(0.0, expiry - age) if expiry else None,
                top=item.findings[0] if item.findings else None,
                more=max(0, len(item.findings) - 1),
                own=email_key(item.sender) == email_key(viewer.email),
            )
        )
    return rows


def _matches(row: QueueRow, chosen: dict[str, str]) -> bool:
    item = row.item
    if chosen.get("team") and (item.team or "") != chosen["team"]:
        return False
    if chosen.get("channel") and item.channel != chosen["channel"]:
        return False
    if chosen.get("case") and chosen["case"] not in related_case_ids(item):
        return False
    if chosen.get("check") and chosen["check"] not in {f.get("check") for f in item.findings}:
        return False
    if chosen.get("sender") and chosen["sender"].strip().casefold() not in item.sender.casefold():
        return False
    return not (chosen.get("overdue") and not row.overdue)


def _chosen(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip()[:200] for name in FILTERS}


def queue_view(ctx: WebContext, viewer: Viewer, chosen: dict[str, str]) -> QueueView:
    every = _rows(ctx, viewer)
    rows = [r for r in every if _matches(r, chosen)]
    return QueueView(
        rows=rows,
        total=len(every),
        overdue=sum(1 for r in rows if r.overdue),
        teams=sorted({r.item.team for r in every if r.item.team}),
        chart=_age_chart(rows),
    )


def _age_chart(rows: Sequence[QueueRow]) -> list[tuple[str, int, float]]:
    counts = []
    lower = 0.0
    for label, upper in AGE_BANDS:
        counts.append((label, sum(1 for r in rows if lower <= r.age < upper)))
        lower = upper
    most = max((c for _, c in counts), default=0) or 1
    return [(label, count, 100.0 * count / most) for label, count in counts]


async def queue_page(request: Request, viewer: Viewer) -> Response:
    ctx = context_of(request)
    chosen = _chosen(request)
    view = await blocking(queue_view, ctx, viewer, chosen)
    await blocking(
        ctx.audit,
        "web.queue_viewed",
        actor=viewer.email,
        remote=viewer.remote,
        details={"filters": {k: v for k, v in chosen.items() if v}, "shown": len(view.rows)},
    )
    checks = registered_checks()
    return render(
        request,
        viewer,
        "queue.html",
        {
            "view": view,
            "chosen": chosen,
            "checks": sorted(checks),
            "descriptions": {name: spec.description for name, spec in checks.items()},
            "query": request.url.query,
            "done": request.query_params.get("done", "")[:16],
            "done_action": request.query_params.get("action", "")[:16],
            "policy": ctx.queue.approval,
        },
    )


async def queue_count(request: Request, viewer: Viewer) -> Response:
    """The number of items the page's filters show, for the page to refresh its count."""
    ctx = context_of(request)
    view = await blocking(queue_view, ctx, viewer, _chosen(request))
    return JSONResponse({"count": len(view.rows), "overdue": view.overdue, "total": view.total})
