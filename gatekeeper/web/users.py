"""Administrators: who has which role, and who may sign in at all."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatekeeper.contact import email_key
from gatekeeper.record import STAFF_ROLES
from gatekeeper.store.models import StaffRole, StaffUser
from gatekeeper.web.auth import ADMIN, ADMINISTER, Viewer
from gatekeeper.web.context import WebContext, blocking, context_of
from gatekeeper.web.routing import action, page, render

ROLE_ORDER = ("staff", "checker", "governance", "admin")


def routes() -> list[Route]:
    return [
        page("/admin/users", ADMINISTER, users_page, name="users"),
        action("/admin/users/{email}", ADMINISTER, change_user),
    ]


@dataclass(frozen=True)
class StaffRow:
    email: str
    name: str
    team: str | None
    roles: frozenset[str]
    active: bool
    has_password: bool


def staff_rows(ctx: WebContext) -> list[StaffRow]:
    with ctx.engine.connect() as conn:
        roles: dict[int, set[str]] = {}
        for user_pk, role in conn.execute(select(StaffRole.user_pk, StaffRole.role)):
            roles.setdefault(user_pk, set()).add(role)
        return [
            StaffRow(
                r.email,
                r.name,
                r.team,
                frozenset(roles.get(r.id, set())),
                r.active,
                r.password_hash is not None,
            )
            for r in conn.execute(
                select(
                    StaffUser.id,
                    StaffUser.email,
                    StaffUser.name,
                    StaffUser.team,
                    StaffUser.active,
                    StaffUser.password_hash,
                ).order_by(StaffUser.team, StaffUser.email)
            )
        ]


async def users_page(request: Request, viewer: Viewer, problem: str = "") -> Response:
    ctx = context_of(request)
    rows = await blocking(staff_rows, ctx)
    await blocking(ctx.audit, "web.users_viewed", actor=viewer.email, remote=viewer.remote)
    return render(
        request,
        viewer,
        "users.html",
        {
            "rows": rows,
            "role_order": ROLE_ORDER,
            "problem": problem,
            "done": request.query_params.get("changed", "")[:254],
        },
        status_code=400 if problem else 200,
    )


def _change(ctx: WebContext, email: str, roles: set[str], active: bool) -> bool:
    with ctx.engine.begin() as conn:
        user_pk = conn.execute(
            select(StaffUser.id).where(StaffUser.email_key == email_key(email))
        ).scalar()
        if user_pk is None:
            return False
        conn.execute(update(StaffUser).where(StaffUser.id == user_pk).values(active=active))
        conn.execute(delete(StaffRole).where(StaffRole.user_pk == user_pk))
        if roles:
            conn.execute(insert(StaffRole), [{"user_pk": user_pk, "role": r} for r in roles])
    return True


async def change_user(request: Request, viewer: Viewer, form: FormData) -> Response:
    ctx = context_of(request)
    email = request.path_params["email"]
    roles = {str(r) for r in form.getlist("role") if str(r) in STAFF_ROLES}
    active = form.get("active") == "on"
    if email_key(email) == email_key(viewer.email) and (ADMIN not in roles or not active):
        return await users_page(
            request,
            viewer,
            problem="You cannot remove your own admin role or deactivate yourself: ask"
            " another administrator.",
        )
    if not await blocking(_change, ctx, email, roles, active):
        return await users_page(request, viewer, problem=f"No member of staff has {email}.")
    await blocking(
        ctx.audit,
        "admin.user_changed",
        actor=viewer.email,
        remote=viewer.remote,
        details={"user": email, "roles": sorted(roles), "active": active},
    )
    return RedirectResponse(f"/admin/users?changed={email}", status_code=303)
