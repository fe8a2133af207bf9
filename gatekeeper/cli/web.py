"""`gatekeeper web`: the approval pages, where a second person checks held items."""

from __future__ import annotations

import signal
import sys

import click

from gatekeeper.cli.context import EXIT_UNUSABLE, AppContext, pass_app


@click.command()
@click.option("--host", help="Listen on this address (default: the web_host setting).")
@click.option("--port", type=int, help="Listen on this port (default: the web_port setting).")
@pass_app
def web(app: AppContext, host: str | None, port: int | None) -> None:
    """Run the approval web pages (the "fresh eyes" second check).

    Checkers see the queue of held items and approve, return or correct them;
    senders see their own held items; governance sees the canaries and the
    audit trail. It shares the store with the relay. Serve it behind a TLS
    reverse proxy (deploy/nginx/). Health on /healthz, Prometheus metrics on
    /metrics; logs are JSON lines on stderr; SIGTERM stops it cleanly.
    """
    from gatekeeper.logs import configure_json_logging
    from gatekeeper.web.server import server

    settings = app.settings.with_overrides(web_host=host, web_port=port)
    configure_json_logging(settings.log_level)
    try:
        serving = server(settings, app.engine)
    except ValueError as exc:  # a bad web_trusted_proxies entry
        click.echo(f"gatekeeper: the web app cannot start: {exc}", err=True)
        sys.exit(EXIT_UNUSABLE)
    # uvicorn re-raises the stop signal once it has shut down; a handled one ends in status 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    serving.run()
    if not serving.started:
        click.echo(
            f"gatekeeper: the web app could not listen on {settings.web_host}:{settings.web_port}",
            err=True,
        )
        sys.exit(EXIT_UNUSABLE)
