"""`gatekeeper users`: staff who send correspondence and give the second check."""

from __future__ import annotations

import click

from gatekeeper.cli.context import AppContext, pass_app
from gatekeeper.cli.importing import run_import
from gatekeeper.store.importer import import_staff


@click.group()
def users() -> None:
    """Staff accounts: senders, checkers, governance and administrators."""


@users.command("import")
@click.argument("file", metavar="FILE.jsonl")
@pass_app
def users_import(app: AppContext, file: str) -> None:
    """Load or update staff from FILE.jsonl (`-` for standard input).

    One JSON object per line: email, name, roles (staff, checker, governance,
    admin) and team. A known address is updated in place and keeps its
    password. Bad lines are listed and the rest still loads; the exit status
    is 1 when any line was rejected.
    """
    report = run_import(app.engine, file, import_staff, "importing staff")
    if report.rejected:
        raise SystemExit(1)
