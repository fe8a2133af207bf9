"""What every request handler shares: the store, the held queue, templates, cookies, metrics.

One `WebContext` per app, built by `create_app` and kept on `app.state`. It
holds no state that matters between requests: everything a decision depends
on is in the store, so any number of web nodes may serve the same queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from gatekeeper.config import Settings
from gatekeeper.held import HeldQueue
from gatekeeper.smtp.auth import StaffDirectory
from gatekeeper.smtp.outbound import record_audit
from gatekeeper.web.metrics import WebMetrics
from gatekeeper.web.sessions import SessionCookies

T = TypeVar("T")
HERE = Path(__file__).parent


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    queue: HeldQueue
    directory: StaffDirectory
    cookies: SessionCookies
    templates: Jinja2Templates
    metrics: WebMetrics

    def audit(
        self,
        action: str,
        *,
        actor: str | None,
        remote: str | None,
        item_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """One audit event (blocking): who did what, to which item, from where."""
        with self.engine.begin() as conn:
            record_audit(conn, action, actor=actor, item_id=item_id, details=details, remote=remote)


def context_of(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.gatekeeper
    return ctx


def remote_of(request: Request) -> str | None:
    """The client's address (the real one when a trusted proxy forwarded the request)."""
    return request.client.host if request.client else None


async def blocking(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store call off the event loop."""
    return await run_in_threadpool(call, *args, **kwargs)


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # content from an email is hostile: everything is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["age"] = describe_age
    env.filters["when"] = lambda moment: moment.strftime("%d %b %Y %H:%M UTC") if moment else ""
    env.filters["role_name"] = lambda role: role.replace("_", " ")
    return Jinja2Templates(env=env)


def describe_age(seconds: float) -> str:
    """`4 min`, `2 h 05 min`, `3 days`: an age read at a glance."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
