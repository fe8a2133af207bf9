"""Routes that cannot forget a rule: every page checks the sign-in and role, every POST the
CSRF token too, before its handler runs; refusals are pages that say what to do, and audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatekeeper.web import csrf
from gatekeeper.web.auth import Need, SignOnRefused, Viewer, keep_session, resolve_viewer
from gatekeeper.web.context import blocking, context_of, now, remote_of

PageHandler = Callable[[Request, Viewer], Awaitable[Response]]
ActionHandler = Callable[[Request, Viewer, FormData], Awaitable[Response]]


def page(path: str, need: Need, handler: PageHandler, name: str | None = None) -> Route:
    """A GET route for `need`; someone not signed in is sent to the sign-in page and back."""

    async def endpoint(request: Request) -> Response:
        try:
            viewer = await resolve_viewer(request)
        except SignOnRefused as refused:
            return error_page(request, None, 403, "Sign-on refused", str(refused), reason="sso")
        if viewer is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        if not viewer.may(need):
            return await refuse(request, viewer, need)
        return keep_session(await handler(request, viewer), request, viewer)

    return Route(path, endpoint, methods=["GET"], name=name)


def action(path: str, need: Need, handler: ActionHandler, name: str | None = None) -> Route:
    """A POST route for `need`: refused without the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        try:
            viewer = await resolve_viewer(request)
        except SignOnRefused as refused:
            return error_page(request, None, 403, "Sign-on refused", str(refused), reason="sso")
        form = await request.form()
        session = viewer.session if viewer else context_of(request).cookies.read(request)
        if not csrf.token_ok(request, session, form):
            ctx = context_of(request)
            await blocking(
                ctx.audit,
                "web.csrf_refused",
                actor=viewer.email if viewer else None,
                remote=remote_of(request),
                details={"path": request.url.path},
            )
            return error_page(
                request,
                viewer,
                403,
                "This form has expired",
                "The form was sent without this session's security token (it may be old, or"
                " come from another site). Go back, reload the page and try again.",
                reason="csrf",
            )
        if viewer is None:
            return error_page(
                request,
                None,
                403,
                "Not signed in",
                "Your sign-in has ended. Sign in again, then repeat what you were doing.",
                reason="signed_out",
            )
        if not viewer.may(need):
            return await refuse(request, viewer, need)
        return keep_session(await handler(request, viewer, form), request, viewer)

    return Route(path, endpoint, methods=["POST"], name=name)


async def refuse(request: Request, viewer: Viewer, need: Need) -> Response:
    ctx = context_of(request)
    await blocking(
        ctx.audit,
        "web.refused",
        actor=viewer.email,
        remote=viewer.remote,
        details={"path": request.url.path, "method": request.method, "needs": need.label},
    )
    roles = ", ".join(sorted(viewer.roles)) or "none"
    return error_page(
        request,
        viewer,
        403,
        "Not for your role",
        f"This page needs {need.label}. You are signed in as {viewer.email} (roles: {roles})."
        " If you should have it, ask an administrator.",
        reason="role",
    )


def error_page(
    request: Request, viewer: Viewer | None, status: int, title: str, message: str, *, reason: str
) -> Response:
    ctx = context_of(request)
    ctx.metrics.refusals.labels(reason).inc()
    return render(
        request, viewer, "error.html", {"title": title, "message": message}, status_code=status
    )


def render(
    request: Request,
    viewer: Viewer | None,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    ctx = context_of(request)
    session = viewer.session if viewer else ctx.cookies.read(request)
    values = {
        "viewer": viewer,
        "csrf_token": session.csrf if session else "",
        "now": now(),
        "path": request.url.path,
        "sso": bool(ctx.settings.web_sso_header),
        **context,
    }
    return ctx.templates.TemplateResponse(request, template, values, status_code=status_code)
