"""Who is asking, and what their roles let them do.

Two ways in: a local account (email and argon2 password, the relay's own) or,
when `web_sso_header` is set, the address a trusted reverse proxy puts in that
header. The header is believed only from `web_trusted_proxies`; from anyone
else the request is refused, so nobody signs in by typing a header. Roles come
from the store on every request; the session cookie only says who signed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from gatekeeper.smtp.auth import StaffIdentity
from gatekeeper.web.context import blocking, context_of, remote_of
from gatekeeper.web.sessions import WebSession

STAFF, CHECKER, GOVERNANCE, ADMIN = "staff", "checker", "governance", "admin"


@dataclass(frozen=True)
class Need:
    """What a route asks of the signed-in person: any one of `roles` (none: a sign-in)."""

    label: str
    roles: frozenset[str] = frozenset()


SIGNED_IN = Need("a sign-in")
QUEUE = Need("the checker, governance or admin role", frozenset({CHECKER, GOVERNANCE, ADMIN}))
# Deciding needs the checker role itself: an administrator who checks holds both.
DECIDE = Need("the checker role", frozenset({CHECKER}))
GOVERN = Need("the governance or admin role", frozenset({GOVERNANCE, ADMIN}))
ADMINISTER = Need("the admin role", frozenset({ADMIN}))


@dataclass(frozen=True)
class Viewer:
    identity: StaffIdentity
    session: WebSession
    remote: str | None
    new_session: bool = False  # the response must carry the session cookie

    @property
    def email(self) -> str:
        return self.identity.email

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def roles(self) -> frozenset[str]:
        return self.identity.roles

    def may(self, need: Need) -> bool:
        return not need.roles or bool(need.roles & self.roles)

    @property
    def may_queue(self) -> bool:
        return self.may(QUEUE)

    @property
    def may_decide(self) -> bool:
        return self.may(DECIDE)

    @property
    def may_govern(self) -> bool:
        return self.may(GOVERN)

    @property
    def is_admin(self) -> bool:
        return self.may(ADMINISTER)


class SignOnRefused(Exception):
    """A single sign-on header that may not be believed; the message says what to do."""


async def resolve_viewer(request: Request) -> Viewer | None:
    """The signed-in member of staff, or None; raises `SignOnRefused` for an untrusted header."""
    ctx = context_of(request)
    remote = remote_of(request)
    session = ctx.cookies.read(request)
    header = ctx.settings.web_sso_header
    claimed = request.headers.get(header, "").strip() if header else ""
    if claimed:
        if not getattr(request.state, "peer_trusted", False):
            await blocking(
                ctx.audit,
                "web.sso_refused",
                actor=None,
                remote=getattr(request.state, "peer", remote),
                details={"claimed": claimed[:254], "path": request.url.path},
            )
            raise SignOnRefused(
                f"This request carries the sign-on header {header} but did not come through"
                " the organisation's sign-on proxy, so it is refused. Open Gatekeeper through"
                " its usual address."
            )
        identity = await blocking(ctx.directory.identity, claimed)
        if identity is None:
            raise SignOnRefused(
                f"{claimed} signed on, but is not an active member of staff in Gatekeeper."
                " Ask an administrator to add you (gatekeeper users import)."
            )
        if session is not None and session.email == identity.email:
            return Viewer(identity, session, remote)
        await blocking(
            ctx.audit, "web.login", actor=identity.email, remote=remote, details={"via": "sso"}
        )
        return Viewer(identity, WebSession.signed_in(identity.email, "sso"), remote, True)
    if session is None or session.email is None:
        return None
    identity = await blocking(ctx.directory.identity, session.email)
    if identity is None:  # deactivated since signing in
        return None
    return Viewer(identity, session, remote)


def keep_session(response: Response, request: Request, viewer: Viewer) -> Response:
    if viewer.new_session:
        context_of(request).cookies.write(response, request, viewer.session)
    return response
