"""The audit trail for governance: every view and decision, who, what, when, from where."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gatekeeper.smtp.outbound import aware
from gatekeeper.store.correspondence import AuditEvent, Item
from gatekeeper.web.auth import GOVERN, Viewer
from gatekeeper.web.context import WebContext, blocking, context_of
from gatekeeper.web.routing import page, render

AUDIT = cast(Table, AuditEvent.__table__)
ITEMS = cast(Table, Item.__table__)
PAGE = 100


def routes() -> list[Route]:
    return [page("/governance/audit", GOVERN, audit_page, name="audit")]


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: dt.datetime
    actor: str | None
    action: str
    ref: str | None
    remote: str | None
    details: dict[str, Any]


def audit_rows(
    ctx: WebContext, actor: str, action: str, ref: str, before: int | None
) -> list[AuditRow]:
    query = (
        select(
            AUDIT.c.id,
            AUDIT.c.at,
            AUDIT.c.actor,
            AUDIT.c.action,
            AUDIT.c.remote,
            AUDIT.c.details,
            ITEMS.c.ref,
        )
        .select_from(AUDIT.outerjoin(ITEMS, ITEMS.c.id == AUDIT.c.item_id))
        .order_by(AUDIT.c.id.desc())
        .limit(PAGE)
    )
    if actor:
        query = query.where(func.lower(AUDIT.c.actor) == actor.casefold())
    if action:
        query = query.where(AUDIT.c.action.startswith(action, autoescape=True))
    if ref:
        query = query.where(ITEMS.c.ref == ref.upper())
    if before is not None:
        query = query.where(AUDIT.c.id < before)
    with ctx.engine.connect() as conn:
        return [
            AuditRow(r.id, aware(r.at), r.actor, r.action, r.ref, r.remote, r.details or {})
            for r in conn.execute(query)
        ]


async def audit_page(request: Request, viewer: Viewer) -> Response:
    ctx = context_of(request)
    params = request.query_params
    actor = params.get("actor", "").strip()[:254]
    action = params.get("action", "").strip()[:64]
    ref = params.get("ref", "").strip()[:16]
    before_text = params.get("before", "")
    before = int(before_text) if before_text.isdigit() else None
    rows = await blocking(audit_rows, ctx, actor, action, ref, before)
    await blocking(
        ctx.audit,
        "web.audit_viewed",
        actor=viewer.email,
        remote=viewer.remote,
        details={"actor": actor, "action": action, "ref": ref},
    )
    return render(
        request,
        viewer,
        "audit.html",
        {
            "rows": rows,
            "actor": actor,
            "action": action,
            "ref": ref,
            "older": rows[-1].id if len(rows) == PAGE else None,
        },
    )
