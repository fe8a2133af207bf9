"""The item page and the three decisions: approve, return to the sender, correct and release.

The page shows what a checker needs to decide fast and well: the message as
text, attachments' text, each finding with what was used beside what the record
expects (the differing characters of a look-alike highlighted), and the
parties of the cases concerned. Opening it is an audit event; the first one is
when "how long it was open" starts. Every rule of a decision is enforced in
`HeldQueue`, whatever the page sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatekeeper.checks.registry import registered_checks
from gatekeeper.contact import email_key
from gatekeeper.held import DecisionRefused, HeldItem, HeldQueue
from gatekeeper.review import VIEWED, DecisionRecord, decision_of, flags_of
from gatekeeper.store.correspondence import Item, ItemContent, ItemState
from gatekeeper.store.sealed import open_content
from gatekeeper.web.auth import DECIDE, QUEUE, Viewer
from gatekeeper.web.context import WebContext, blocking, context_of, now
from gatekeeper.web.message import DiffPiece, ShownMessage, character_diff, show_message
from gatekeeper.web.parties import ShownCase, cases_of, related_case_ids
from gatekeeper.web.routing import action, error_page, page, render

ITEMS = cast(Table, Item.__table__)
CONTENTS = cast(Table, ItemContent.__table__)
NOTE_LIMIT = 2000
DONE = {"approve": "approved", "return": "returned", "correct": "corrected"}


def routes() -> list[Route]:
    return [
        page("/items/{ref}", QUEUE, item_page, name="item"),
        action("/items/{ref}/approve", DECIDE, approve),
        action("/items/{ref}/return", DECIDE, return_to_sender),
        action("/items/{ref}/correct", DECIDE, correct),
    ]


@dataclass(frozen=True)
class Comparison:
    """What was used beside what the record expects, for one finding."""

    used: str
    expected: tuple[str, ...]
    used_pieces: list[DiffPiece] | None  # set for a look-alike: the characters that differ
    expected_pieces: list[DiffPiece] | None


@dataclass(frozen=True)
class ShownFinding:
    index: int
    check: str
    severity: str
    summary: str
    description: str
    comparison: Comparison | None
    similarity: float | None


@dataclass(frozen=True)
class ItemView:
    item: HeldItem
    age: float
    message: ShownMessage | None  # None once the content has been purged
    findings: list[ShownFinding]
    resolved: dict[str, dict[str, Any]]  # recipient -> party and case the record says it is
    cases: list[ShownCase]
    decision: DecisionRecord | None
    flags: set[str]
    choices: dict[str, list[str]]
    owners: dict[str, str]  # a verified address -> whose it is, for the correction choices
    own: bool
    can_decide: bool


def load_view(ctx: WebContext, viewer: Viewer, ref: str) -> ItemView | None:
    item = ctx.queue.get(ref)
    if item is None:
        return None
    with ctx.engine.connect() as conn:
        row = conn.execute(
            select(ITEMS.c.recipients, CONTENTS.c.raw, CONTENTS.c.key_id)
            .select_from(ITEMS.outerjoin(CONTENTS, CONTENTS.c.item_id == ITEMS.c.id))
            .where(ITEMS.c.id == item.id)
        ).one()
        decision = decision_of(conn, item.id)
    resolved = {str(r.get("address")): r for r in (row.recipients or []) if isinstance(r, dict)}
    message = (
        show_message(
            open_content(ctx.queue.quarantine, item.id, row.key_id, row.raw),
            item.sender,
            list(item.recipients),
            item.channel,
        )
        if row.raw is not None
        else None
    )
    own = email_key(item.sender) == email_key(viewer.email)
    held = item.state == ItemState.HELD.value
    can_decide = held and viewer.may_decide and not own
    cases = cases_of(ctx.engine, related_case_ids(item, resolved.values()))
    return ItemView(
        item=item,
        age=(now() - item.received_at).total_seconds(),
        message=message,
        findings=_findings(item.findings),
        resolved=resolved,
        cases=cases,
        decision=decision,
        flags=flags_of(ctx.engine, [item.id]).get(item.id, set()),
        # A letter's address is printed on it: it is returned and reprinted, never corrected.
        choices=ctx.queue.correction_choices(item)
        if can_decide and item.channel == "email"
        else {},
        owners={
            address: f"{party.name}, {party.role.replace('_', ' ')}, case {case.case_id}"
            + (", confidential" if party.confidential else "")
            for case in cases
            for party in case.parties
            for address in party.emails
        },
        own=own,
        can_decide=can_decide,
    )


def _findings(findings: Iterable[dict[str, Any]]) -> list[ShownFinding]:
    specs = registered_checks()
    shown = []
    for index, finding in enumerate(findings):
        check = str(finding.get("check", ""))
        evidence = finding.get("evidence") or {}
        spec = specs.get(check)
        similarity = evidence.get("similarity")
        shown.append(
            ShownFinding(
                index=index,
                check=check,
                severity=str(finding.get("severity", "")),
                summary=str(finding.get("summary", "")),
                description=spec.description if spec else "",
                comparison=_comparison(evidence),
                similarity=float(similarity) if isinstance(similarity, int | float) else None,
            )
        )
    return shown


def _comparison(evidence: dict[str, Any]) -> Comparison | None:
    used = evidence.get("recipient") or evidence.get("domain")
    expected = evidence.get("expected") or evidence.get("expected_domain")
    if not used or not expected:
        return None
    if isinstance(expected, str):
        left, right = character_diff(str(used), expected)
        single = "@" in expected or "expected_domain" in evidence
        return Comparison(
            str(used), (expected,), left if single else None, right if single else None
        )
    return Comparison(str(used), tuple(str(e) for e in expected), None, None)


async def item_page(request: Request, viewer: Viewer) -> Response:
    return await _show(request, viewer, record_view=True)


async def _show(
    request: Request,
    viewer: Viewer,
    *,
    record_view: bool,
    problem: str = "",
    status: int = 200,
    form: FormData | None = None,
) -> Response:
    ctx = context_of(request)
    ref = request.path_params["ref"].upper()
    view = await blocking(load_view, ctx, viewer, ref)
    if view is None:
        await blocking(
            ctx.audit,
            "web.item_not_found",
            actor=viewer.email,
            remote=viewer.remote,
            details={"ref": ref[:16]},
        )
        return error_page(
            request,
            viewer,
            404,
            "No such item",
            f"There is no item with ref {ref[:16]}. A ref is 8 letters and digits, as in the"
            " held notice; open the queue to see what is waiting.",
            reason="not_found",
        )
    if record_view:
        await blocking(
            ctx.audit,
            VIEWED,
            actor=viewer.email,
            remote=viewer.remote,
            item_id=view.item.id,
            details={"ref": view.item.ref, "state": view.item.state},
        )
    return render(
        request,
        viewer,
        "item.html",
        {
            "view": view,
            "problem": problem,
            "policy": ctx.queue.approval,
            "ticked": {int(i) for i in _ints(form.getlist("confirm"))} if form else set(),
            "note": str(form.get("note") or "") if form else "",
        },
        status_code=status,
    )


def _ints(values: Iterable[Any]) -> list[int]:
    out = []
    for value in values:
        try:
            out.append(int(str(value)))
        except ValueError:
            continue
    return out


async def approve(request: Request, viewer: Viewer, form: FormData) -> Response:
    confirmed = _ints(form.getlist("confirm"))
    note = str(form.get("note") or "")[:NOTE_LIMIT]
    return await _decide(
        request,
        viewer,
        form,
        "approve",
        lambda queue, ref: queue.approve(
            ref, viewer.email, note, confirmed=confirmed, remote=viewer.remote
        ),
    )


async def return_to_sender(request: Request, viewer: Viewer, form: FormData) -> Response:
    note = str(form.get("note") or "").strip()[:NOTE_LIMIT]
    if not note:
        return await _show(
            request,
            viewer,
            record_view=False,
            status=400,
            form=form,
            problem="Write a note for the sender before returning it: what should they put right?",
        )
    confirmed = _ints(form.getlist("confirm"))
    return await _decide(
        request,
        viewer,
        form,
        "return",
        lambda queue, ref: queue.return_to_sender(
            ref, viewer.email, note, confirmed=confirmed, remote=viewer.remote
        ),
    )


async def correct(request: Request, viewer: Viewer, form: FormData) -> Response:
    """`replace` names a recipient as the sender addressed it, `with` the record's address."""
    replacements = {
        str(used): str(new)
        for used, new in zip(form.getlist("replace"), form.getlist("with"), strict=False)
        if str(new).strip()
    }
    confirmed = _ints(form.getlist("confirm"))
    note = str(form.get("note") or "")[:NOTE_LIMIT]
    return await _decide(
        request,
        viewer,
        form,
        "correct",
        lambda queue, ref: queue.correct(
            ref, viewer.email, replacements, note, confirmed=confirmed, remote=viewer.remote
        ),
    )


async def _decide(
    request: Request,
    viewer: Viewer,
    form: FormData,
    what: str,
    decide: Callable[[HeldQueue, str], HeldItem],
) -> Response:
    ctx = context_of(request)
    ref = request.path_params["ref"].upper()
    try:
        item = await blocking(decide, ctx.queue, ref)
    except DecisionRefused as refused:
        current = await blocking(ctx.queue.get, ref)
        if current is None:
            status = 404
        elif email_key(current.sender) == email_key(viewer.email):
            status = 403  # fresh eyes: never the sender
        elif current.state != ItemState.HELD.value:
            status = 409  # somebody decided first
        else:
            status = 400
        ctx.metrics.refusals.labels(f"decision_{status}").inc()
        return await _show(
            request, viewer, record_view=False, problem=str(refused), status=status, form=form
        )
    ctx.metrics.decisions.labels(what).inc()
    return RedirectResponse(f"/queue?done={item.ref}&action={DONE[what]}", status_code=303)
