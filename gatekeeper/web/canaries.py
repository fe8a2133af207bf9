"""Governance's view of the second check: per checker, canaries caught and missed, speed.

Only governance (and administrators) see which items were canaries; the
queue and item pages never show it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gatekeeper.held import SYSTEM_ACTOR
from gatekeeper.smtp.outbound import aware
from gatekeeper.store.approval import Canary, HeldFlag, HeldItemFlag
from gatekeeper.store.correspondence import HumanDecision, Item
from gatekeeper.web.auth import GOVERN, Viewer
from gatekeeper.web.context import WebContext, blocking, context_of, now
from gatekeeper.web.routing import page, render

CANARIES = cast(Table, Canary.__table__)
DECISIONS = cast(Table, HumanDecision.__table__)
FLAGS = cast(Table, HeldItemFlag.__table__)
ITEMS = cast(Table, Item.__table__)
PERIODS = (7, 30, 90, 365)


def routes() -> list[Route]:
    return [page("/governance/canaries", GOVERN, canaries_page, name="canaries")]


@dataclass
class CheckerRecord:
    checker: str
    decisions: int = 0
    approved: int = 0
    returned: int = 0
    corrected: int = 0
    caught: int = 0
    missed: int = 0
    fast: int = 0
    seconds: list[float] = field(default_factory=list)

    @property
    def canaries(self) -> int:
        return self.caught + self.missed

    @property
    def catch_rate(self) -> float | None:
        return self.caught / self.canaries if self.canaries else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


@dataclass(frozen=True)
class CanaryRow:
    ref: str
    kind: str
    case_id: str
    planted: str
    expected: str
    created_at: dt.datetime
    outcome: str | None
    checker: str | None


@dataclass(frozen=True)
class GovernanceView:
    days: int
    checkers: list[CheckerRecord]
    recent: list[CanaryRow]
    waiting: int
    caught: int
    missed: int


def governance_view(ctx: WebContext, days: int) -> GovernanceView:
    since = now() - dt.timedelta(days=days)
    records: dict[str, CheckerRecord] = {}

    def record(actor: str) -> CheckerRecord:
        return records.setdefault(actor, CheckerRecord(actor))

    with ctx.engine.connect() as conn:
        canary_ids = set(conn.execute(select(CANARIES.c.item_id)).scalars())
        for row in conn.execute(
            select(
                DECISIONS.c.item_id, DECISIONS.c.actor, DECISIONS.c.action, DECISIONS.c.seconds_open
            ).where(
                DECISIONS.c.at >= since,
                DECISIONS.c.actor != SYSTEM_ACTOR,
                DECISIONS.c.action.in_(["approve", "return", "correct"]),
            )
        ):
            r = record(row.actor)
            r.decisions += 1
            counted = {"approve": "approved", "return": "returned", "correct": "corrected"}
            setattr(r, counted[row.action], getattr(r, counted[row.action]) + 1)
            if row.seconds_open is not None and row.item_id not in canary_ids:
                r.seconds.append(float(row.seconds_open))
        for checker, outcome in conn.execute(
            select(CANARIES.c.checker, CANARIES.c.outcome).where(
                CANARIES.c.scored_at >= since, CANARIES.c.checker.is_not(None)
            )
        ):
            r = record(checker)
            if outcome == "caught":
                r.caught += 1
            elif outcome == "missed":
                r.missed += 1
        for details in conn.execute(
            select(FLAGS.c.details).where(
                FLAGS.c.flag == HeldFlag.FAST_DECISION.value, FLAGS.c.at >= since
            )
        ).scalars():
            actor = (details or {}).get("actor")
            if actor and actor != SYSTEM_ACTOR:
                record(str(actor)).fast += 1
        recent = [
            CanaryRow(
                r.ref,
                r.kind,
                r.case_id,
                r.planted,
                r.expected,
                aware(r.created_at),
                r.outcome,
                r.checker,
            )
            for r in conn.execute(
                select(ITEMS.c.ref, CANARIES)
                .join(ITEMS, ITEMS.c.id == CANARIES.c.item_id)
                .where(CANARIES.c.created_at >= since)
                .order_by(CANARIES.c.created_at.desc())
                .limit(50)
            )
        ]
        waiting = len(
            conn.execute(
                select(CANARIES.c.item_id)
                .join(ITEMS, ITEMS.c.id == CANARIES.c.item_id)
                .where(ITEMS.c.state == "held")
            ).all()
        )
    checkers = sorted(records.values(), key=lambda r: (-(r.canaries), r.checker))
    return GovernanceView(
        days=days,
        checkers=checkers,
        recent=recent,
        waiting=waiting,
        caught=sum(r.caught for r in checkers),
        missed=sum(r.missed for r in checkers),
    )


async def canaries_page(request: Request, viewer: Viewer) -> Response:
    ctx = context_of(request)
    try:
        days = int(request.query_params.get("days", "30"))
    except ValueError:
        days = 30
    days = days if days in PERIODS else 30
    view = await blocking(governance_view, ctx, days)
    await blocking(
        ctx.audit,
        "web.canaries_viewed",
        actor=viewer.email,
        remote=viewer.remote,
        details={"days": days},
    )
    context: dict[str, Any] = {
        "view": view,
        "periods": PERIODS,
        "policy": ctx.queue.approval,
    }
    return render(request, viewer, "canaries.html", context)
