"""`gatekeeper held`: the second check from the command line (`gatekeeper web` in a browser)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from gatekeeper.cli.context import AppContext, pass_app

if TYPE_CHECKING:
    from gatekeeper.held import HeldItem, HeldQueue


@click.group()
def held() -> None:
    """Items held for a second check: list them, approve or return them."""


def _queue(app: AppContext) -> HeldQueue:
    from gatekeeper.held import HeldQueue

    return HeldQueue(app.engine, app.settings)


def _as_json(item: HeldItem) -> dict[str, Any]:
    return {
        "ref": item.ref,
        "state": item.state,
        "sender": item.sender,
        "team": item.team,
        "subject": item.subject,
        "recipients": list(item.recipients),
        "case_ids": list(item.case_ids),
        "findings": list(item.findings),
        "received_at": item.received_at.isoformat(),
        "size": item.size,
    }


def _show(item: HeldItem) -> None:
    when = item.received_at.strftime("%Y-%m-%d %H:%M")
    click.echo(f"{click.style(item.ref, bold=True)}  {when}  from {item.sender}")
    click.echo(f"  to: {', '.join(item.recipients)}")
    click.echo(f"  subject: {item.subject or '(no subject)'}")
    for finding in item.findings:
        click.echo(
            f"  {finding.get('severity', ''):5}  {finding.get('check')}: {finding.get('summary')}"
        )


@held.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one object per item.")
@pass_app
def held_list(app: AppContext, as_json: bool) -> None:
    """Items waiting for a second check, oldest first, with what was found."""
    items = _queue(app).waiting()
    for item in items:
        if as_json:
            click.echo(json.dumps(_as_json(item), ensure_ascii=False))
        else:
            _show(item)
    if not as_json:
        click.echo(f"{len(items)} held" if items else "nothing is held")


@held.command("show")
@click.argument("ref")
@pass_app
def held_show(app: AppContext, ref: str) -> None:
    """One item by its ref, whatever its state."""
    item = _queue(app).get(ref)
    if item is None:
        raise click.ClickException(f"there is no item with ref {ref.upper()}")
    _show(item)
    click.echo(f"  state: {item.state}")


def _decide(app: AppContext, ref: str, checker: str, note: str, approve: bool) -> HeldItem:
    from gatekeeper.held import DecisionRefused

    queue = _queue(app)
    try:
        if approve:
            return queue.approve(ref, checker, note)
        return queue.return_to_sender(ref, checker, note)
    except DecisionRefused as exc:
        raise click.ClickException(str(exc)) from None


@held.command("approve")
@click.argument("ref")
@click.option("--as", "checker", required=True, metavar="EMAIL", help="The checker deciding.")
@click.option("--note", default="", help="Why, for the record.")
@pass_app
def held_approve(app: AppContext, ref: str, checker: str, note: str) -> None:
    """Approve a held item: it leaves exactly as the sender wrote it.

    The checker must hold the checker role and must not be the sender.
    """
    item = _decide(app, ref, checker, note, approve=True)
    if item.channel == "post":  # a letter: its held print job is released to the printer
        click.echo(f"approved {item.ref}: the letter to {', '.join(item.recipients)} prints now")
        return
    click.echo(f"approved {item.ref}: queued for delivery to {', '.join(item.recipients)}")


@held.command("reject")
@click.argument("ref")
@click.option("--as", "checker", required=True, metavar="EMAIL", help="The checker deciding.")
@click.option("--note", default="", help="What the sender should put right (sent to them).")
@pass_app
def held_reject(app: AppContext, ref: str, checker: str, note: str) -> None:
    """Return a held item to its sender unsent, with a note saying why.

    The checker must hold the checker role and must not be the sender.
    """
    item = _decide(app, ref, checker, note, approve=False)
    if item.channel == "post":
        click.echo(f"returned {item.ref} to {item.sender}; its print job is cancelled")
        return
    click.echo(f"returned {item.ref} to {item.sender}; they have been sent a notice")


@held.command("sweep")
@pass_app
def held_sweep(app: AppContext) -> None:
    """Escalate items waiting too long, expire those nobody decided, plant canaries.

    What the web app does in its background every `web_sweep_seconds`, once,
    for cron. The limits and the canary rate are the policy's `approval`
    section. Safe to run on several machines at once.
    """
    from gatekeeper.sweep import HeldSweep

    click.echo(HeldSweep(app.engine, app.settings).run().summary())
