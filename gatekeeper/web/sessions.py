"""Sessions in signed cookies: who is signed in, since when, and the session's CSRF token.

Nothing about a session lives in a process, so any web node answers any
request. The cookie says only who signed in and how; roles are read from the
store on every request, so a change of role takes effect at once. The signing
key is the `web_secret_key` setting, else one generated once and kept in the
store for every node to share.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from gatekeeper.store.approval import WebKey

COOKIE = "gatekeeper_session"
KEYS = cast(Table, WebKey.__table__)
SESSION_KEY_NAME = "session_signing"


@dataclass(frozen=True)
class WebSession:
    """What the cookie carries: the signed-in address (None before sign-in) and the CSRF token."""

    email: str | None
    csrf: str
    via: str = "password"  # or "sso"
    issued: float = 0.0

    @classmethod
    def anonymous(cls) -> WebSession:
        return cls(email=None, csrf=secrets.token_urlsafe(32), issued=time.time())

    @classmethod
    def signed_in(cls, email: str, via: str) -> WebSession:
        # A fresh CSRF token at sign-in: a token seen before it is worth nothing after.
        return cls(email=email, csrf=secrets.token_urlsafe(32), via=via, issued=time.time())


class SessionCookies:
    def __init__(self, secret: str, lifetime_minutes: int) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="gatekeeper.web.session")
        self.max_age = max(1, lifetime_minutes) * 60

    def read(self, request: Request) -> WebSession | None:
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            data: Any = self.serializer.loads(value, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired: the sign-in has run its time
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        email = data.get("u")
        return WebSession(
            email=email if isinstance(email, str) else None,
            csrf=data["c"],
            via=str(data.get("v", "password")),
            issued=float(data.get("t", 0.0)),
        )

    def write(self, response: Response, request: Request, session: WebSession) -> None:
        value = self.serializer.dumps(
            {"u": session.email, "c": session.csrf, "v": session.via, "t": session.issued}
        )
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def clear(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
        )


def session_secret(engine: Engine, configured: str) -> str:
    """The configured key, else the store's (made by whichever node starts first)."""
    if configured:
        return configured
    with engine.begin() as conn:
        found = conn.execute(select(KEYS.c.value).where(KEYS.c.name == SESSION_KEY_NAME)).scalar()
        if found:
            return str(found)
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(KEYS).values(name=SESSION_KEY_NAME, value=secrets.token_urlsafe(48))
                )
        except IntegrityError:
            pass  # another node made it first: use theirs
        return str(
            conn.execute(select(KEYS.c.value).where(KEYS.c.name == SESSION_KEY_NAME)).scalar_one()
        )
