"""`gatekeeper post`: letters: the CUPS backend and the letters service behind it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from gatekeeper.cli.context import EXIT_UNUSABLE, AppContext, pass_app


@click.group()
def post() -> None:
    """Letters: every print job through the gate before it reaches the printer."""


@post.command("install-backend")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default="/usr/lib/cups/backend",
    show_default=True,
    help="CUPS's backend folder (its ServerBin's backend/).",
)
@click.option(
    "--run-as-root",
    is_flag=True,
    help="Mode 0700, so CUPS runs it as root (to wrap a USB printer's backend, or when CUPS's"
    " user cannot read this Python installation). Default: 0755, run as CUPS's user.",
)
@pass_app
def install_backend_command(app: AppContext, folder: Path, run_as_root: bool) -> None:
    """Install the `gatekeeper` CUPS backend, pointed at the letters service.

    Then create a queue whose device URI wraps the real printer's:

    \b
      lpadmin -p letters -E -v gatekeeper:socket://printer.example:9100

    Every job printed to it is checked first: released letters print with a
    code on every page, held ones wait in CUPS for a second check, blocked
    ones are cancelled. Run it again after changing letters_host,
    letters_port, letters_socket or letters_timeout.
    """
    from gatekeeper.post.install import install_backend, service_address

    try:
        target = install_backend(app.settings, folder, as_root=run_as_root)
    except OSError as exc:
        click.echo(f"gatekeeper: cannot install the backend in {folder}: {exc}", err=True)
        sys.exit(EXIT_UNUSABLE)
    click.echo(f"installed {target} (letters service: {service_address(app.settings)})")
    click.echo("create a queue: lpadmin -p letters -E -v gatekeeper:socket://PRINTER:9100")


@post.command("serve")
@click.option("--host", help="Listen on this address (default: the letters_host setting).")
@click.option("--port", type=int, help="Listen on this port (default: the letters_port setting).")
@click.option("--socket", "socket_path", help="Listen on this Unix socket instead of TCP.")
@pass_app
def serve(app: AppContext, host: str | None, port: int | None, socket_path: str | None) -> None:
    """Run the letters service that the CUPS backend hands every print job to.

    It loads the case record once, checks each letter, stores it with the
    decision and answers print (with the stamped PDF), hold or cancel. Health
    and metrics at /healthz and /metrics. Logs are JSON lines on stderr;
    SIGTERM stops it cleanly.
    """
    from gatekeeper.logs import configure_json_logging
    from gatekeeper.post.service import LettersService

    settings = app.settings.with_overrides(
        letters_host=host, letters_port=port, letters_socket=socket_path
    )
    configure_json_logging(settings.log_level)
    try:
        asyncio.run(LettersService(settings).serve())
    except OSError as exc:
        click.echo(f"gatekeeper: the letters service cannot start: {exc}", err=True)
        sys.exit(EXIT_UNUSABLE)
