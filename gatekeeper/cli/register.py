"""`gatekeeper register` and `gatekeeper retention`: governance's register from the command line."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Sequence
from typing import Any

import click

from gatekeeper.cli.context import AppContext, pass_app
from gatekeeper.register.causes import Category, Cause, EntryKind
from gatekeeper.register.reports import ReportTable
from gatekeeper.register.years import FinancialYear

KIND_CHOICES = [*(k.value for k in EntryKind), "reported"]


@click.group()
def register() -> None:
    """The near-miss log and breach register: fill it, list it, report from it."""


@register.command("sync")
@pass_app
def register_sync(app: AppContext) -> None:
    """Record near misses the store has facts for (run it from cron; safe on every node).

    Blocked items, held items a checker returned or corrected, missed canaries
    and scan-station alarms each become exactly one entry.
    """
    from gatekeeper.register import sync_store

    click.echo(sync_store(app.engine).summary())


def _last_complete_year() -> int:
    return FinancialYear.of(dt.datetime.now(dt.UTC)).previous().start_year


@register.command("report")
@click.option(
    "--year",
    type=int,
    metavar="YYYY",
    help="The financial year starting 1 April YYYY (default: the last complete one).",
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of text tables.")
@click.option(
    "--table",
    "only",
    metavar="NAME",
    help="Only this table (summary, near_misses, by_category, by_cause, by_channel, by_team,"
    " monthly, false_alarms, canaries); with --csv, in its own columns.",
)
@pass_app
def register_report(app: AppContext, year: int | None, as_csv: bool, only: str | None) -> None:
    """The year's figures for an FOI answer or the annual report.

    Counts of incidents reported to the regulator, other incidents, events and
    near misses, by category, cause, channel, team and month; each check's
    false-alarm rate and each checker's canary results. --csv without --table
    gives every table in one file, a line per cell (table, row, column, value).
    """
    from gatekeeper.register import sync_store
    from gatekeeper.register.export import table_csv, tables_csv
    from gatekeeper.register.reports import year_report

    sync_store(app.engine)
    fy = FinancialYear(year if year is not None else _last_complete_year())
    with app.engine.connect() as conn:
        report = year_report(conn, fy)
    tables: Sequence[ReportTable] = report.tables
    if only:
        names = [t.name for t in report.tables]
        if only not in names:
            raise click.BadParameter(f"choose one of: {', '.join(names)}", param_hint="--table")
        tables = [report.table(only)]
    if as_csv:
        text = table_csv(tables[0]) if only else tables_csv(tables)
        click.echo(text.removeprefix("\ufeff"), nl=False)
        return
    first, last = fy.first_day, fy.last_day
    click.echo(f"Financial year {fy.label}: {first:%d %B %Y} to {last:%d %B %Y}")
    for table in tables:
        click.echo("")
        click.echo(text_table(table))


def text_table(table: ReportTable, width: int = 80) -> str:
    """A table for a terminal: a title, aligned columns, numbers to the right, long text cut."""
    body = [[_text(v, width) for v in row] for row in table.rows]
    cells = [list(table.columns), *body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    numeric = [bool(body) and all(_numeric(row[i]) for row in body) for i in range(len(widths))]
    lines = [click.style(table.title, bold=True)]
    for n, row in enumerate(cells):
        parts = [
            value.rjust(w) if numeric[i] else value.ljust(w)
            for i, (value, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if not table.rows:
        lines.append("(none)")
    if table.note:
        lines.append(click.style(table.note, dim=True))
    return "\n".join(lines)


def _text(value: Any, width: int) -> str:
    from gatekeeper.register.export import cell

    text = cell(value).removeprefix("'").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _numeric(value: str) -> bool:
    return value.replace(".", "", 1).rstrip("%").isdigit() or value == "-"


@register.command("list")
@click.option("--kind", type=click.Choice(KIND_CHOICES), help="near_miss, incident, event, ...")
@click.option("--cause", type=click.Choice([c.value for c in Cause]))
@click.option("--category", type=click.Choice([c.value for c in Category]))
@click.option("--channel", help="email, post or other.")
@click.option("--team")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Discovered on or after.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Discovered on or before.")
@click.option("--csv", "as_csv", is_flag=True, help="Every field, as CSV.")
@pass_app
def register_list(
    app: AppContext,
    *,
    kind: str | None,
    cause: str | None,
    category: str | None,
    channel: str | None,
    team: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    as_csv: bool,
) -> None:
    """Register entries, newest first (dates are London dates)."""
    from gatekeeper.register import sync_store
    from gatekeeper.register.entries import EntryFilter, list_entries
    from gatekeeper.register.export import entries_csv

    sync_store(app.engine)
    where = EntryFilter(
        kind=kind or "",
        cause=cause or "",
        category=category or "",
        channel=channel or "",
        team=team or "",
        since=since.date() if since else None,
        until=until.date() if until else None,
    )
    with app.engine.connect() as conn:
        entries = list_entries(conn, where)
    if as_csv:
        click.echo(entries_csv(entries).removeprefix("\ufeff"), nl=False)
        return
    for e in entries:
        when = e.discovered_at.strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{e.ref}  {when}  {e.kind:9}  {e.category:3} {e.cause:20} {e.channel:5}"
            f"  {e.team or '-':12} {e.summary[:60]}"
        )
    click.echo(f"{len(entries)} entries")


@register.command("search")
@click.argument("subject")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every table.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, a line per cell: table, row, ...")
@pass_app
def register_search(app: AppContext, subject: str, as_json: bool, as_csv: bool) -> None:
    """Everything about one person, for a subject access request.

    SUBJECT is a party id, an email address or a name. Lists the parties it
    names, and every item, decision and register entry that concerns them.
    The search is audited.
    """
    from gatekeeper.register import sync_store
    from gatekeeper.register.export import tables_csv
    from gatekeeper.register.subject_access import audit_search, search_subject

    sync_store(app.engine)
    with app.engine.begin() as conn:
        found = search_subject(conn, subject)
        audit_search(conn, found, actor=f"{getpass.getuser()} (command line)")
    if as_json:
        click.echo(json.dumps(found.as_json(), ensure_ascii=False, indent=2))
        return
    if as_csv:
        click.echo(tables_csv(found.tables()).removeprefix("\ufeff"), nl=False)
        return
    for table in found.tables():
        click.echo(text_table(table))
        click.echo("")
    if found.empty:
        click.echo(f"nothing in the store concerns {subject!r}")


@click.group()
def retention() -> None:
    """Purge held content the policy no longer keeps (the register keeps its metadata)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="List what would be purged; change nothing.")
@pass_app
def retention_run(app: AppContext, dry_run: bool) -> None:
    """Purge the content of items decided more than `retention.content_days` ago.

    Run it daily (cron), or let the web app do it. Each purge is audited.
    """
    from gatekeeper.policy import load_policy
    from gatekeeper.register.retention import purge

    days = load_policy(app.settings.policy_file or None).retention.content_days
    report = purge(app.engine, days, dry_run=dry_run)
    if dry_run:
        for ref in report.purged:
            click.echo(ref)
        click.echo(f"would purge the content of {len(report.purged)} items ({report.bytes} bytes)")
        return
    click.echo(report.summary())
