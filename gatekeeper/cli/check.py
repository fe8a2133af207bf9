"""`gatekeeper check`: what Gatekeeper would do with an item, without sending anything.

The contract is shared/spec/check-cli.md: JSON (Lines for several files),
exit status 0 release, 1 hold, 2 block, 3 when an item could not be checked.
Nothing is held, sent or logged, and the store is only read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gatekeeper.cli.context import EXIT_UNUSABLE, AppContext, pass_app
from gatekeeper.config import ConfigError
from gatekeeper.decision import Decision, Verdict
from gatekeeper.item import Item
from gatekeeper.store import StoreUnavailable, open_store

if TYPE_CHECKING:  # the language pipeline loads only when a command checks something
    from gatekeeper.gate import Gate

EXIT_FOR = {Verdict.RELEASE: 0, Verdict.HOLD: 1, Verdict.BLOCK: 2}


@click.group()
def check() -> None:
    """Ask what Gatekeeper would do with an email or a letter (sends nothing)."""


@check.command("email")
@click.argument("messages", nargs=-1, required=True, metavar="MESSAGE.eml...")
@click.option("--sender", metavar="ADDRESS", help="The member of staff sending (default: From:).")
@click.option("--json", "as_json", is_flag=True, help="JSON output (JSON Lines for several files).")
@pass_app
def check_email(
    app: AppContext, messages: tuple[str, ...], sender: str | None, as_json: bool
) -> None:
    """Check one or more saved emails against the case record.

    Prints the verdict (release, hold or block) and every finding with what
    the record expected. Exit status: 0 release, 1 hold, 2 block, 3 when a
    message could not be checked at all; with several files, the most severe.
    """
    from gatekeeper.mail import item_from_email

    gate = _gate(app)

    def parse(raw: bytes, path: str) -> Item:
        return item_from_email(raw, sender=sender, original_path=path)

    sys.exit(_run(gate, messages, parse, as_json))


@check.command("letter")
@click.argument("letters", nargs=-1, required=True, metavar="LETTER.pdf...")
@click.option(
    "--sender", metavar="ADDRESS", required=True, help="The member of staff sending the letter."
)
@click.option("--json", "as_json", is_flag=True, help="JSON output (JSON Lines for several files).")
@pass_app
def check_letter(app: AppContext, letters: tuple[str, ...], sender: str, as_json: bool) -> None:
    """Check one or more letters (PDF) against the case record, as the print queue would.

    The addressee is read from the address block where a window envelope shows
    it (the letter_window setting), else from the first page's address-like
    block. Exit status: 0 release, 1 hold, 2 block, 3 when a letter could not
    be checked at all; with several files, the most severe.
    """
    from gatekeeper.post.address_block import AddressWindow
    from gatekeeper.post.letter import item_from_letter

    try:
        window = AddressWindow.parse(app.settings.letter_window)
    except ValueError as exc:
        raise ConfigError(f"letter_window: {exc}") from None  # exit status 3, one line
    gate = _gate(app)

    def parse(raw: bytes, path: str) -> Item:
        return item_from_letter(raw, sender=sender, window=window, original_path=path)

    sys.exit(_run(gate, letters, parse, as_json))


def _gate(app: AppContext) -> Gate:
    """The gate on the existing store; a missing store is an error, never created here."""
    url = app.settings.effective_database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database not in ("", ":memory:") and not Path(database).exists():
            raise StoreUnavailable(
                f"no case record: the store {database} does not exist "
                "(load one with `gatekeeper cases import FILE`)"
            )
    from gatekeeper.gate import Gate

    engine = open_store(url, migrate_empty=False)
    return Gate.from_store(engine, app.settings)


def _run(
    gate: Gate,
    paths: tuple[str, ...],
    parse: Callable[[bytes, str], Item],
    as_json: bool,
) -> int:
    worst = 0
    several = len(paths) > 1
    for path in paths:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            reason = f"cannot read {path}: {exc.strerror}"
            click.echo(f"gatekeeper: {reason}", err=True)
            if as_json:
                _emit({"file": path, "verdict": "error", "error": reason}, several=True)
            else:
                click.echo(f"{path}: ERROR {reason}")
            worst = max(worst, EXIT_UNUSABLE)
            continue
        decision = gate.check(parse(raw, path))
        worst = max(worst, EXIT_FOR[decision.verdict])
        if as_json:
            body = decision.as_json()
            _emit({"file": path, **body} if several else body, several=several)
        else:
            _show(path, decision)
    return worst


def _emit(obj: dict[str, Any], several: bool) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=None if several else 2))


def _show(path: str, decision: Decision) -> None:
    colour = {"release": "green", "hold": "yellow", "block": "red"}[decision.verdict.value]
    about = f" (about case {', '.join(decision.case_ids)})" if decision.case_ids else ""
    click.echo(
        f"{path}: " + click.style(decision.verdict.value.upper(), fg=colour, bold=True) + about
    )
    if decision.enforced_verdict and decision.enforced_verdict is not decision.verdict:
        click.echo(f"  monitor-only: the findings call for {decision.enforced_verdict.value}")
    for rated in decision.findings:
        click.echo(f"  {rated.severity.value:5}  {rated.finding.check}: {rated.finding.summary}")
