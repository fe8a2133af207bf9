"""`gatekeeper audit`: prove the audit trail is whole, and anchor its head elsewhere."""

from __future__ import annotations

import re
import sys

import click

from gatekeeper.cli.context import AppContext, pass_app

# Exit status when the chain shows tampering (3, store unusable, is shared by every command).
EXIT_BROKEN = 1
_HASH = re.compile(r"[0-9a-f]{64}")


def _anchor(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    anchors = [v.strip().lower() for v in values]
    for anchor in anchors:
        if not _HASH.fullmatch(anchor):
            raise click.BadParameter(f"{anchor!r} is not a head hash (64 hexadecimal digits)")
    return anchors


@click.group()
def audit() -> None:
    """The audit trail: every sign-in, view, decision and purge, chained by hash."""


@audit.command("verify")
@click.option(
    "--expect-head",
    "anchors",
    metavar="HASH",
    multiple=True,
    callback=_anchor,
    help="A head an earlier run printed (kept in a ticket or log elsewhere): it must still be"
    " in the chain. Repeatable.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Print at most this many problems (all are counted); 0 prints every one.",
)
@pass_app
def audit_verify(app: AppContext, anchors: list[str], limit: int) -> None:
    """Walk the whole chain and say which events were altered, removed or added.

    Exit status 0 and `N events, chain intact, head HASH` when nothing was
    changed; 1 and one line per problem otherwise. Keep the head it prints
    somewhere the database's administrators cannot rewrite, and pass it back
    with --expect-head: that catches a chain rewritten from some point on, or
    cut short, which the chain alone cannot show.
    """
    from gatekeeper.audit import read_head
    from gatekeeper.audit.verify import verify_chain
    from gatekeeper.cli.progress import count_progress

    with app.engine.connect() as conn:
        head = read_head(conn)
    with count_progress(head.seq if head else None, "verifying", "events") as advance:
        report = verify_chain(app.engine, anchors=anchors, limit=limit or None, advance=advance)
    for note in report.notes:
        click.echo(note)
    head_hash = report.head.hash if report.head else "missing"
    if report.intact:
        click.echo(f"{report.events} events, chain intact, head {head_hash}")
        return
    for problem in report.problems:
        click.echo(problem)
    count = report.problem_count
    if count > len(report.problems):
        click.echo(f"... and {count - len(report.problems)} more (--limit 0 prints every one)")
    click.echo(
        f"chain broken: {count} problem{'s' if count != 1 else ''} in {report.events} events,"
        f" head {head_hash}",
        err=True,
    )
    sys.exit(EXIT_BROKEN)


@audit.command("head")
@pass_app
def audit_head(app: AppContext) -> None:
    """Print the chain's head now, without walking it: cheap enough for an hourly anchor.

    Send it where the database's administrators cannot rewrite it (a remote log,
    a ticket); `gatekeeper audit verify --expect-head HASH` checks it later.
    """
    from gatekeeper.audit import read_head

    with app.engine.connect() as conn:
        head = read_head(conn)
    if head is None:
        raise click.ClickException(
            "the audit chain's head is missing: run `gatekeeper audit verify`"
        )
    click.echo(f"event {head.seq}, head {head.hash}")
