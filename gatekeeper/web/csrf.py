"""Cross-site request forgery: every POST carries its session's token, and comes from here.

The token lives in the signed session cookie and in a hidden field of every
form (or the `X-CSRF-Token` header); a POST whose token is missing or differs
is refused. A browser's `Sec-Fetch-Site` and `Origin` headers, when sent, must not
name another site either.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import FormData
from starlette.requests import Request

from gatekeeper.web.sessions import WebSession

FIELD = "csrf"
HEADER = "x-csrf-token"


def token_ok(request: Request, session: WebSession | None, form: FormData) -> bool:
    if session is None:
        return False
    sent = form.get(FIELD) or request.headers.get(HEADER) or ""
    if not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(sent.encode(), session.csrf.encode()) and same_origin(request)


def same_origin(request: Request) -> bool:
    """No sign of another site: the browser's `Sec-Fetch-Site` and `Origin`, when it sends them."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    # Absent, or "null" (sent under our no-referrer policy): the token is the check that counts.
    if origin is None or origin == "null":
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}"
