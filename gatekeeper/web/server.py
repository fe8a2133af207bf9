"""Serving the web app with uvicorn: JSON log lines, no proxy guessing, stops on SIGTERM."""

from __future__ import annotations

import uvicorn
from sqlalchemy import Engine

from gatekeeper.config import Settings


def server(settings: Settings, engine: Engine, *, sweep: bool = True) -> uvicorn.Server:
    """A uvicorn server for the app on `settings.web_host:web_port` (not yet started)."""
    from gatekeeper.web.app import create_app

    config = uvicorn.Config(
        create_app(settings, engine, sweep=sweep),
        host=settings.web_host,
        port=settings.web_port,
        log_config=None,  # our JSON-lines logging, configured by the caller
        access_log=False,  # the app logs each request itself, without query strings
        proxy_headers=False,  # forwarded headers are believed only from trusted proxies
        server_header=False,
        lifespan="on",
    )
    return uvicorn.Server(config)
