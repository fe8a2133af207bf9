"""`gatekeeper relay`: the SMTP relay every staff email passes through."""

from __future__ import annotations

import asyncio
import sys

import click

from gatekeeper.cli.context import EXIT_UNUSABLE, AppContext, pass_app


@click.command()
@click.option("--host", help="Listen on this address (default: the relay_host setting).")
@click.option("--port", type=int, help="Listen on this port (default: the relay_port setting).")
@pass_app
def relay(app: AppContext, host: str | None, port: int | None) -> None:
    """Run the SMTP relay: check every message, then deliver, hold or refuse it.

    Staff mail clients (or a front MTA such as Postfix) send through it. Each
    message is stored, passes the gate inside the SMTP transaction and is
    answered 250 (released, or held for a second check) or 550 (blocked).
    Released and approved mail goes to `upstream_host` from a durable queue.
    Logs are JSON lines on stderr; SIGTERM stops it cleanly.
    """
    from gatekeeper.config import ConfigError
    from gatekeeper.logs import configure_json_logging
    from gatekeeper.smtp.affinity import pin_relay_threads
    from gatekeeper.smtp.gatepool import GateUnavailable
    from gatekeeper.smtp.relay import Relay

    settings = app.settings.with_overrides(relay_host=host, relay_port=port)
    configure_json_logging(settings.log_level)
    try:
        # This process is the relay alone, so its threads may share one CPU (see affinity).
        gate_cpus = pin_relay_threads(settings.relay_cpu)
    except ConfigError as exc:
        click.echo(f"gatekeeper: {exc}", err=True)
        sys.exit(EXIT_UNUSABLE)
    try:
        asyncio.run(Relay(settings, gate_cpus=gate_cpus).serve())
    except (GateUnavailable, OSError) as exc:
        click.echo(f"gatekeeper: the relay cannot start: {exc}", err=True)
        sys.exit(EXIT_UNUSABLE)
