"""`gatekeeper users`: staff who send correspondence and give the second check."""

from __future__ import annotations

import sys

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


@users.command("set-password")
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@pass_app
def users_set_password(app: AppContext, email: str, password_stdin: bool) -> None:
    """Set the password EMAIL uses to send through the relay (AUTH PLAIN/LOGIN).

    Asks twice on a terminal; with --password-stdin it reads one line instead,
    for scripts. Stored as an argon2id hash, never in clear.
    """
    from gatekeeper.passwords import WeakPassword, hash_password
    from gatekeeper.store.staff import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except WeakPassword as exc:
        raise click.ClickException(str(exc)) from None
    if not set_password(app.engine, email, hashed):
        raise click.ClickException(f"no member of staff has the address {email}")
    click.echo(f"password set for {email}")


@users.command("send-as")
@click.argument("email")
@click.option("--add", "added", multiple=True, metavar="ADDRESS", help="Allow this address.")
@click.option("--remove", "removed", multiple=True, metavar="ADDRESS", help="Withdraw it.")
@pass_app
def users_send_as(
    app: AppContext, email: str, added: tuple[str, ...], removed: tuple[str, ...]
) -> None:
    """Show or change the addresses EMAIL may send as besides their own (team mailboxes).

    The relay refuses a message whose envelope sender or From: is neither the
    signed-in member of staff nor one of these.
    """
    from gatekeeper.contact import InvalidContact
    from gatekeeper.store.staff import change_send_as

    try:
        addresses = change_send_as(app.engine, email, added, removed)
    except InvalidContact as exc:
        raise click.ClickException(str(exc)) from None
    if addresses is None:
        raise click.ClickException(f"no member of staff has the address {email}")
    click.echo(f"{email} may send as: {', '.join([email, *addresses])}")
