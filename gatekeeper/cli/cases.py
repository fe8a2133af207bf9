"""`gatekeeper cases`: the case record Gatekeeper checks against."""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gatekeeper.casebook import effective_withheld_from
from gatekeeper.cli.context import AppContext, pass_app
from gatekeeper.cli.importing import run_import
from gatekeeper.store.importer import import_cases
from gatekeeper.store.models import Case, CaseAlias, Party


@click.group()
def cases() -> None:
    """The case record: import the export from case management, look a case up."""


@cases.command("import")
@click.argument("file", metavar="FILE.jsonl")
@pass_app
def cases_import(app: AppContext, file: str) -> None:
    """Load or update cases from FILE.jsonl (`-` for standard input).

    One JSON case per line, as in the case-record exchange format. Importing
    the same file again changes nothing; a newer export updates cases in
    place. Bad lines are listed with their number and reason and the rest
    still loads; the exit status is 1 when any line was rejected.
    """
    report = run_import(app.engine, file, import_cases, "importing cases")
    if report.rejected:
        raise SystemExit(1)


@cases.command("show")
@click.argument("case_id")
@pass_app
def cases_show(app: AppContext, case_id: str) -> None:
    """Show a case's parties and how to reach them; CASE_ID may be an alias.

    Confidential contact details are marked with who they are withheld from.
    """
    with Session(app.engine) as session:
        case = _find_case(session, case_id)
        if case is None:
            raise click.ClickException(f"no case {case_id!r} in the record")
        click.echo(f"Case {case.case_id} ({case.status})")
        if case.aliases:
            click.echo(f"  also known as: {', '.join(a.alias for a in case.aliases)}")
        members = [(p.party_id, p.role, p.represents) for p in case.parties]
        names = {p.party_id: p.name for p in case.parties}
        for party in case.parties:
            _show_party(party, members, names)


def _find_case(session: Session, reference: str) -> Case | None:
    query = select(Case).options(
        selectinload(Case.aliases),
        selectinload(Case.parties).selectinload(Party.emails),
        selectinload(Case.parties).selectinload(Party.postal_addresses),
    )
    case = session.scalars(query.where(Case.case_id == reference)).first()
    if case is None:
        alias = select(CaseAlias.case_id).where(CaseAlias.alias == reference).scalar_subquery()
        case = session.scalars(query.where(Case.case_id == alias)).first()
    return case


def _show_party(
    party: Party, members: list[tuple[str, str, str | None]], names: dict[str, str]
) -> None:
    click.echo("")
    title = f"  {party.party_id}  {party.role.replace('_', ' ')}: {party.name}"
    if party.other_names:
        title += f" (also {', '.join(party.other_names)})"
    click.echo(click.style(title, bold=True))
    if party.organisation:
        click.echo(f"      organisation: {party.organisation}")
    if party.represents:
        click.echo(f"      represents: {names.get(party.represents, party.represents)}")
    if party.date_of_birth:
        click.echo(f"      born: {party.date_of_birth.isoformat()}")
    withheld = effective_withheld_from(
        party.party_id, party.confidential, party.withheld_from, members
    )
    if withheld:
        who = ", ".join(f"{names.get(p, p)} ({p})" for p in sorted(withheld))
        click.echo(
            click.style(f"      CONFIDENTIAL contact details: withheld from {who}", fg="red")
        )
    if not party.contact_allowed:
        click.echo(click.style("      do not contact directly", fg="yellow"))
    marker = " [confidential]" if withheld else ""
    for email in party.emails:
        click.echo(f"      email: {email.address}{marker}")
    for postal in party.postal_addresses:
        click.echo(f"      post:  {', '.join(postal.lines)}, {postal.postcode}{marker}")
    if not party.emails and not party.postal_addresses:
        click.echo("      no verified contact details")
