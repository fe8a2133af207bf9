"""Governance's register pages: the list with its filters, an entry and its history, the
incident form and amendments, the year's report with its chart, subject access, and CSV of
every table.

Every page first brings the register up to date (`register.sync`), so what
governance sees is what the store knows now. Every view and export is audited.
The web app's background loop (`keep_register`) syncs every
`register_sync_seconds` and runs retention once a day on one node.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatekeeper.policy import load_policy
from gatekeeper.register.causes import Category, Cause, EntryKind, EntrySource, label_of
from gatekeeper.register.chart import monthly_chart
from gatekeeper.register.clock import RegulatorClock, regulator_clock
from gatekeeper.register.entries import (
    ENTRIES,
    Entry,
    EntryFilter,
    Version,
    entry_id_of,
    get_entry,
    list_entries,
    teams_in_register,
    versions_of,
)
from gatekeeper.register.export import entries_csv, table_csv, tables_csv
from gatekeeper.register.filling import sync_store
from gatekeeper.register.incidents import CHANNELS, AmendConflict, RegisterError
from gatekeeper.register.incidents import amend_entry as amend_in_store
from gatekeeper.register.incidents import record_entry as record_in_store
from gatekeeper.register.kinds import DataKind
from gatekeeper.register.reports import YearReport, year_report
from gatekeeper.register.schedule import register_round
from gatekeeper.register.subject_access import SubjectAccess, audit_search, search_subject
from gatekeeper.register.years import FinancialYear, local
from gatekeeper.store.models import Party
from gatekeeper.web.auth import GOVERN, Viewer
from gatekeeper.web.context import WebContext, blocking, context_of, now
from gatekeeper.web.register_form import editable_fields, form_values, parse_form
from gatekeeper.web.routing import action, error_page, page, render

log = logging.getLogger(__name__)
PARTIES = cast(Table, Party.__table__)
BASE = "/governance/register"
LIST_LIMIT = 500
# Per page view, the sync classifies at most this many new facts; the loop does the rest.
PAGE_SYNC_ROUNDS = 2
KIND_CHOICES = (
    ("near_miss", "near misses"),
    ("incident", "incidents"),
    ("reported", "incidents reported to the regulator"),
    ("event", "events"),
)


def routes() -> list[Route]:
    return [
        page(BASE, GOVERN, register_page, name="register"),
        page(f"{BASE}.csv", GOVERN, register_csv, name="register_csv"),
        page(f"{BASE}/new", GOVERN, new_page, name="register_new"),
        action(f"{BASE}/new", GOVERN, new_action),
        page(f"{BASE}/report", GOVERN, report_page, name="register_report"),
        page(f"{BASE}/report.csv", GOVERN, report_csv, name="register_report_csv"),
        page(f"{BASE}/search", GOVERN, search_page, name="register_search"),
        page(f"{BASE}/search.csv", GOVERN, search_csv, name="register_search_csv"),
        page(f"{BASE}/search.json", GOVERN, search_json, name="register_search_json"),
        page(BASE + "/{ref}", GOVERN, entry_page, name="register_entry"),
        page(BASE + "/{ref}/amend", GOVERN, amend_page, name="register_amend"),
        action(BASE + "/{ref}/amend", GOVERN, amend_action),
    ]


# -- what every page shares -----------------------------------------------------------------


def london(moment: dt.datetime | None) -> str:
    """`31 Mar 2026 23:59`, on the London clock (the zone's abbreviation when it is BST)."""
    if moment is None:
        return ""
    shown = local(moment)
    return shown.strftime("%d %b %Y %H:%M") + (" BST" if shown.dst() else "")


def _choices() -> dict[str, Any]:
    return {
        "kinds": KIND_CHOICES,
        "entry_kinds": [(k.value, k.label) for k in EntryKind],
        "causes": [(c.value, c.label) for c in Cause],
        "categories": [(c.value, c.label) for c in Category],
        "channels": CHANNELS,
        "data_kinds": [(k.value, k.label) for k in DataKind],
        "label": label_of,
        "london": london,
        "base": BASE,
    }


async def _sync(ctx: WebContext) -> None:
    """Bring the register up to date before showing it (a failure shows what is there)."""
    try:
        await blocking(sync_store, ctx.engine, rounds=PAGE_SYNC_ROUNDS)
    except Exception:
        log.exception("the register sync before a page failed; the page shows what is stored")


async def _audit(request: Request, viewer: Viewer, action_name: str, **details: Any) -> None:
    ctx = context_of(request)
    await blocking(
        ctx.audit, action_name, actor=viewer.email, remote=viewer.remote, details=details
    )


def _csv(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- the list -------------------------------------------------------------------------------


def _filter_of(request: Request) -> tuple[EntryFilter, dict[str, str]]:
    params = request.query_params
    shown = {
        name: params.get(name, "").strip()[:100]
        for name in ("kind", "channel", "cause", "category", "team", "since", "until")
    }
    valid = {
        "kind": {k for k, _ in KIND_CHOICES},
        "cause": {c.value for c in Cause},
        "category": {c.value for c in Category},
        "channel": set(CHANNELS),
    }
    for name, allowed in valid.items():
        if shown[name] not in allowed:
            shown[name] = ""
    since, until = _date(shown["since"]), _date(shown["until"])
    shown["since"] = since.isoformat() if since else ""
    shown["until"] = until.isoformat() if until else ""
    where = EntryFilter(
        kind=shown["kind"],
        channel=shown["channel"],
        cause=shown["cause"],
        category=shown["category"],
        team=shown["team"],
        since=since,
        until=until,
    )
    return where, shown


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class ListedEntry:
    entry: Entry
    clock: RegulatorClock | None


def _list(ctx: WebContext, where: EntryFilter) -> tuple[list[ListedEntry], int, list[str]]:
    moment = now()
    with ctx.engine.connect() as conn:
        entries = list_entries(conn, where, limit=LIST_LIMIT + 1)
        teams = teams_in_register(conn)
    listed = [ListedEntry(e, regulator_clock(e, moment)) for e in entries[:LIST_LIMIT]]
    return listed, len(entries), teams


async def register_page(request: Request, viewer: Viewer) -> Response:
    ctx = context_of(request)
    await _sync(ctx)
    where, shown = _filter_of(request)
    listed, found, teams = await blocking(_list, ctx, where)
    await _audit(request, viewer, "web.register_viewed", **{k: v for k, v in shown.items() if v})
    last_year = FinancialYear.of(now()).previous()
    context = {
        **_choices(),
        "entries": listed,
        "more": found > LIST_LIMIT,
        "limit": LIST_LIMIT,
        "filters": shown,
        "teams": teams,
        "query": str(request.url.query),
        "last_year": last_year,
        "open_clocks": [e for e in listed if e.clock and not e.clock.reported],
    }
    return render(request, viewer, "register.html", context)


async def register_csv(request: Request, viewer: Viewer) -> Response:
    ctx = context_of(request)
    await _sync(ctx)
    where, shown = _filter_of(request)

    def read() -> list[Entry]:
        with ctx.engine.connect() as conn:
            return list_entries(conn, where)

    entries = await blocking(read)
    await _audit(
        request, viewer, "web.register_exported", table="entries", rows=len(entries), **shown
    )
    stamp = local(now()).strftime("%Y-%m-%d")
    return _csv(entries_csv(entries), f"register-{stamp}.csv")


# -- one entry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ShownVersion:
    version: Version
    changes: list[Change]


def _history(versions: list[Version]) -> list[ShownVersion]:
    shown = []
    previous: Mapping[str, Any] = {}
    for version in versions:
        changes = [
            Change(name, previous.get(name), version.fields.get(name)) for name in version.changed
        ]
        shown.append(ShownVersion(version, changes))
        previous = version.fields
    return list(reversed(shown))


def _entry_view(ctx: WebContext, entry_id: int) -> tuple[Entry, list[Version], dict[str, str]]:
    with ctx.engine.connect() as conn:
        entry = get_entry(conn, entry_id)
        if entry is None:
            raise LookupError(entry_id)
        versions = versions_of(conn, entry_id)
        names = dict(
            conn.execute(
                select(PARTIES.c.party_id, PARTIES.c.name).where(
                    PARTIES.c.party_id.in_(list(entry.data_subjects))
                )
            ).all()
        )
    return entry, versions, {str(k): str(v) for k, v in names.items()}


def _no_entry(request: Request, viewer: Viewer) -> Response:
    ref = request.path_params["ref"]
    return error_page(
        request, viewer, 404, "No such entry", f"There is no register entry {ref}.", reason="404"
    )


async def _entry_or_none(
    request: Request, viewer: Viewer
) -> tuple[Entry, list[Version], dict[str, str]] | None:
    """The entry the path names, its versions and its data subjects' names; None if none."""
    entry_id = entry_id_of(request.path_params["ref"])
    if entry_id is None:
        return None
    try:
        return await blocking(_entry_view, context_of(request), entry_id)
    except LookupError:
        return None


async def entry_page(request: Request, viewer: Viewer) -> Response:
    await _sync(context_of(request))
    found = await _entry_or_none(request, viewer)
    if found is None:
        return _no_entry(request, viewer)
    entry, versions, names = found
    await _audit(request, viewer, "web.register_entry_viewed", entry=entry.ref)
    context = {
        **_choices(),
        "entry": entry,
        "clock": regulator_clock(entry, now()),
        "history": _history(versions),
        "names": names,
        "source_label": EntrySource(entry.source_kind).label,
        "saved": request.query_params.get("saved") == "1",
    }
    return render(request, viewer, "register_entry.html", context)


# -- recording and amending -----------------------------------------------------------------


def _form_page(
    request: Request,
    viewer: Viewer,
    *,
    entry: Entry | None,
    values: Mapping[str, Any],
    problems: Mapping[str, str],
    status_code: int = 200,
    note: str = "",
) -> Response:
    context = {
        **_choices(),
        "entry": entry,
        "values": values,
        "problems": problems,
        "fields": editable_fields(entry),
        "note": note,
    }
    return render(request, viewer, "register_form.html", context, status_code=status_code)


async def new_page(request: Request, viewer: Viewer) -> Response:
    return _form_page(request, viewer, entry=None, values=form_values(None), problems={})


async def new_action(request: Request, viewer: Viewer, form: FormData) -> Response:
    ctx = context_of(request)
    fields = editable_fields(None)
    values, problems = parse_form(form, fields)
    if not problems:
        try:

            def record() -> Entry:
                with ctx.engine.begin() as conn:
                    return record_in_store(conn, values, actor=viewer.email)

            entry = await blocking(record)
        except RegisterError as refused:
            problems = refused.problems
        else:
            return RedirectResponse(f"{BASE}/{entry.ref}?saved=1", status_code=303)
    shown = {**form_values(values), **_raw(form, fields)}
    return _form_page(request, viewer, entry=None, values=shown, problems=problems, status_code=400)


def _raw(form: FormData, fields: tuple[str, ...]) -> dict[str, Any]:
    """What was typed, shown back as it was when it could not be read."""
    out: dict[str, Any] = {}
    for name in fields:
        if name in ("reportable", "reported"):
            out[name] = form.get(name) in ("on", "true", "1", "yes")
        elif name == "data_kinds":
            out[name] = [str(v) for v in form.getlist(name)]
        else:
            out[name] = str(form.get(name) or "")
    return out


async def amend_page(request: Request, viewer: Viewer) -> Response:
    found = await _entry_or_none(request, viewer)
    if found is None:
        return _no_entry(request, viewer)
    entry = found[0]
    return _form_page(request, viewer, entry=entry, values=form_values(entry), problems={})


async def amend_action(request: Request, viewer: Viewer, form: FormData) -> Response:
    ctx = context_of(request)
    found = await _entry_or_none(request, viewer)
    if found is None:
        return _no_entry(request, viewer)
    entry = found[0]
    fields = editable_fields(entry)
    values, problems = parse_form(form, fields)
    note = str(form.get("note") or "").strip()[:2000]
    version_text = str(form.get("from_version") or "")
    from_version = int(version_text) if version_text.isdigit() else None
    status_code = 400
    if not problems:
        try:

            def amend() -> Entry:
                with ctx.engine.begin() as conn:
                    return amend_in_store(
                        conn,
                        entry.id,
                        values,
                        actor=viewer.email,
                        note=note,
                        from_version=from_version,
                    )

            amended = await blocking(amend)
        except AmendConflict as conflict:
            problems, status_code = conflict.problems, 409
        except RegisterError as refused:
            problems = refused.problems
        else:
            return RedirectResponse(f"{BASE}/{amended.ref}?saved=1", status_code=303)
    shown = {**form_values(entry), **_raw(form, fields)}
    return _form_page(
        request,
        viewer,
        entry=entry,
        values=shown,
        problems=problems,
        status_code=status_code,
        note=note,
    )


# -- the year's report ----------------------------------------------------------------------


def _years(ctx: WebContext) -> list[FinancialYear]:
    """The years with entries, and the current one, newest first."""
    with ctx.engine.connect() as conn:
        first = conn.execute(select(func.min(ENTRIES.c.discovered_at))).scalar()
    current = FinancialYear.of(now())
    oldest = FinancialYear.of(first) if first is not None else current.previous()
    oldest = min(oldest, current.previous())
    return [FinancialYear(y) for y in range(current.start_year, oldest.start_year - 1, -1)]


def _year_of(request: Request) -> FinancialYear:
    text = request.query_params.get("year", "")
    if text.isdigit() and 2000 <= int(text) <= 2200:
        return FinancialYear(int(text))
    return FinancialYear.of(now()).previous()  # "last financial year": the usual question


def _report(ctx: WebContext, year: FinancialYear) -> YearReport:
    with ctx.engine.connect() as conn:
        return year_report(conn, year)


async def report_page(request: Request, viewer: Viewer) -> Response:
    ctx = context_of(request)
    await _sync(ctx)
    year = _year_of(request)
    report = await blocking(_report, ctx, year)
    years = await blocking(_years, ctx)
    await _audit(request, viewer, "web.register_report_viewed", year=year.label)
    context = {
        **_choices(),
        "report": report,
        "year": year,
        "years": years,
        "chart": monthly_chart(report.table("monthly")),
        "first_tables": [report.table("summary"), report.table("near_misses")],
        "other_tables": [
            t for t in report.tables if t.name not in ("summary", "near_misses", "monthly")
        ],
        "monthly": report.table("monthly"),
    }
    return render(request, viewer, "register_report.html", context)


async def report_csv(request: Request, viewer: Viewer) -> Response:
    ctx = context_of(request)
    await _sync(ctx)
    year = _year_of(request)
    report = await blocking(_report, ctx, year)
    name = request.query_params.get("table", "")
    names = [t.name for t in report.tables]
    if name and name not in names:
        return error_page(
            request,
            viewer,
            404,
            "No such table",
            f"Choose one of: {', '.join(names)}.",
            reason="404",
        )
    await _audit(request, viewer, "web.register_exported", table=name or "all", year=year.label)
    if name:
        return _csv(table_csv(report.table(name)), f"register-{year.label}-{name}.csv")
    return _csv(tables_csv(report.tables), f"register-{year.label}.csv")


# -- subject access -------------------------------------------------------------------------


async def _search(request: Request, viewer: Viewer) -> SubjectAccess | None:
    ctx = context_of(request)
    query = request.query_params.get("q", "").strip()[:254]
    if not query:
        return None
    await _sync(ctx)

    def search() -> SubjectAccess:
        with ctx.engine.begin() as conn:
            found = search_subject(conn, query)
            audit_search(conn, found, actor=viewer.email)
            return found

    return await blocking(search)


async def search_page(request: Request, viewer: Viewer) -> Response:
    found = await _search(request, viewer)
    context = {
        **_choices(),
        "found": found,
        "q": found.query if found else "",
        "tables": found.tables() if found else (),
    }
    return render(request, viewer, "register_search.html", context)


async def search_csv(request: Request, viewer: Viewer) -> Response:
    found = await _search(request, viewer)
    if found is None:
        return RedirectResponse(f"{BASE}/search", status_code=303)
    name = request.query_params.get("table", "")
    tables = {t.name: t for t in found.tables()}
    if name in tables:
        return _csv(table_csv(tables[name]), f"subject-access-{name}.csv")
    return _csv(tables_csv(found.tables()), "subject-access.csv")


async def search_json(request: Request, viewer: Viewer) -> Response:
    found = await _search(request, viewer)
    if found is None:
        return RedirectResponse(f"{BASE}/search", status_code=303)
    return Response(
        json.dumps(found.as_json(), ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="subject-access.json"'},
    )


# -- the background loop ----------------------------------------------------------------------


async def keep_register(ctx: WebContext) -> None:
    """Every `register_sync_seconds`: sync the register; once a day (one node), retention."""
    from gatekeeper.smtp.notices import node_name

    node = node_name(ctx.settings)
    days = load_policy(ctx.settings.policy_file or None).retention.content_days
    while True:
        await asyncio.sleep(ctx.settings.register_sync_seconds)
        try:
            await asyncio.to_thread(
                register_round, ctx.engine, node=node, content_days=days, now=now()
            )
        except Exception:
            log.exception("the register sync or retention failed; it runs again next round")
