"""Signing in and out with a local account (email and password, checked with argon2).

Failed attempts are audit events; ten for one address within fifteen minutes,
or ten from one client (one password tried on many accounts), refuse further
tries for it, or from it, until the window has passed (counted in the store,
so every node agrees).
"""

from __future__ import annotations

import datetime as dt
from typing import cast
from urllib.parse import urlsplit

from sqlalchemy import Table, false, func, or_, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatekeeper.contact import email_key
from gatekeeper.store.correspondence import AuditEvent
from gatekeeper.web import csrf
from gatekeeper.web.auth import SIGNED_IN, SignOnRefused, Viewer, resolve_viewer
from gatekeeper.web.context import WebContext, blocking, context_of, now, remote_of
from gatekeeper.web.routing import action, error_page
from gatekeeper.web.sessions import WebSession

AUDIT = cast(Table, AuditEvent.__table__)
FAILED = "web.login_failed"
MAX_FAILURES = 10
FAILURE_WINDOW = dt.timedelta(minutes=15)


def routes() -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        action("/logout", SIGNED_IN, logout),
    ]


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    target = (target or "").replace("\\", "/")  # browsers read a backslash as a slash
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    try:
        viewer = await resolve_viewer(request)
    except SignOnRefused as refused:
        return error_page(request, None, 403, "Sign-on refused", str(refused), reason="sso")
    target = safe_next(request.query_params.get("next"))
    if viewer is not None:
        response: Response = RedirectResponse(target, status_code=303)
        if viewer.new_session:
            context_of(request).cookies.write(response, request, viewer.session)
        return response
    return _form(request, target)


def _form(request: Request, target: str, problem: str = "", status: int = 200) -> Response:
    ctx = context_of(request)
    session = ctx.cookies.read(request)
    if session is None or session.email is not None:
        session = WebSession.anonymous()
    response = ctx.templates.TemplateResponse(
        request,
        "login.html",
        {
            "viewer": None,
            "csrf_token": session.csrf,
            "next": target,
            "problem": problem,
            "now": now(),
            "path": "/login",
            "sso": bool(ctx.settings.web_sso_header),
        },
        status_code=status,
    )
    ctx.cookies.write(response, request, session)
    return response


async def login(request: Request) -> Response:
    ctx = context_of(request)
    form = await request.form()
    session = ctx.cookies.read(request)
    target = safe_next(str(form.get("next") or "/"))
    if not csrf.token_ok(request, session, form):
        return _form(request, target, "The sign-in form had expired: please try again.", 403)
    login_name = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    remote = remote_of(request)
    if await blocking(_too_many_failures, ctx, login_name, remote):
        ctx.metrics.refusals.labels("login_throttled").inc()
        return _form(
            request,
            target,
            f"Too many failed sign-ins for {login_name}, or from here. Wait 15 minutes, or ask an"
            " administrator to reset the password (gatekeeper users set-password).",
            429,
        )
    identity = await blocking(ctx.directory.authenticate, login_name, password)
    if identity is None:
        await blocking(
            ctx.audit,
            FAILED,
            actor=None,
            remote=remote,
            details={"login": email_key(login_name)[:254]},
        )
        return _form(
            request,
            target,
            "That email address and password do not match an active account. Check them and"
            " try again; an administrator can set a new password.",
            400,
        )
    await blocking(
        ctx.audit, "web.login", actor=identity.email, remote=remote, details={"via": "password"}
    )
    response = RedirectResponse(target, status_code=303)
    ctx.cookies.write(response, request, WebSession.signed_in(identity.email, "password"))
    return response


async def logout(request: Request, viewer: Viewer, _form: FormData) -> Response:
    ctx = context_of(request)
    await blocking(ctx.audit, "web.logout", actor=viewer.email, remote=viewer.remote)
    response = RedirectResponse("/login", status_code=303)
    ctx.cookies.write(response, request, WebSession.anonymous())
    return response


def _too_many_failures(ctx: WebContext, login_name: str, remote: str | None) -> bool:
    for_login = AUDIT.c.details["login"].as_string() == email_key(login_name)[:254]
    from_client = AUDIT.c.remote == remote if remote else false()
    with ctx.engine.connect() as conn:
        by_login, by_client = conn.execute(
            select(func.count().filter(for_login), func.count().filter(from_client))
            .select_from(AUDIT)
            .where(
                AUDIT.c.action == FAILED,
                AUDIT.c.at >= now() - FAILURE_WINDOW,
                or_(for_login, from_client),
            )
        ).one()
    return bool(by_login >= MAX_FAILURES or by_client >= MAX_FAILURES)
