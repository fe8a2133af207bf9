"""The scan station (role `staff`, in the postal room): each envelope proven before it is sealed.

The operator starts an envelope and scans the code on each page going in: a
barcode scanner types the code into the focused field and presses Enter, or a
photographed page is uploaded and decoded here with zxing-cpp. The page shows
the letter being assembled, turns green when every page of one released
letter is in, and alarms (a wrong-envelope near-miss, recorded) when a page
of another letter is scanned in, a page is missing at sealing, or the letter
was never released. Dispatch records the time and the operator. The rules are
`gatekeeper.post.scan`; this module only serves them.
"""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatekeeper.post.scan import (
    EnvelopeView,
    ScanOutcome,
    ScanRefused,
    ScanStation,
    decode_codes,
)
from gatekeeper.web.auth import ADMIN, STAFF, Need, Viewer
from gatekeeper.web.context import blocking, context_of
from gatekeeper.web.routing import action, error_page, page, render

SCAN = Need("the staff role", frozenset({STAFF, ADMIN}))
MAX_IMAGE_BYTES = 15 * 1024 * 1024
RECENT_ALARMS = 10


def routes() -> list[Route]:
    return [
        page("/scan", SCAN, station_page, name="scan"),
        action("/scan/envelopes", SCAN, open_envelope),
        action("/scan/envelopes/{envelope:int}/pages", SCAN, scan_code),
        action("/scan/envelopes/{envelope:int}/image", SCAN, scan_image),
        action("/scan/envelopes/{envelope:int}/dispatch", SCAN, dispatch),
        action("/scan/envelopes/{envelope:int}/abandon", SCAN, abandon),
    ]


def _station(request: Request) -> ScanStation:
    return ScanStation(context_of(request).engine)


async def station_page(
    request: Request,
    viewer: Viewer,
    outcomes: list[ScanOutcome] | None = None,
    envelope: EnvelopeView | None = None,
    problem: str = "",
) -> Response:
    station = _station(request)
    current = envelope or await blocking(station.current, viewer.email)
    alarms = await blocking(station.alarms, RECENT_ALARMS)
    shown = outcomes or []
    status = shown[-1].status if shown else ""
    if any(o.status == "alarm" for o in shown):
        status = "alarm"
    return render(
        request,
        viewer,
        "scan.html",
        {
            "envelope": current,
            "outcomes": shown,
            "status": status,
            "problem": problem,
            "alarms": alarms,
        },
        status_code=400 if problem else 200,
    )


async def open_envelope(request: Request, viewer: Viewer, _form: FormData) -> Response:
    station = _station(request)
    # An unsealed envelope stays the operator's until it is dispatched or abandoned.
    if await blocking(station.current, viewer.email) is None:
        await blocking(station.open_envelope, viewer.email)
    return RedirectResponse("/scan", status_code=303)


def _target(request: Request) -> tuple[ScanStation, int]:
    return _station(request), int(request.path_params["envelope"])


async def scan_code(request: Request, viewer: Viewer, form: FormData) -> Response:
    station, envelope_id = _target(request)
    text = form.get("code")
    if not isinstance(text, str) or not text.strip():
        return await station_page(request, viewer, problem="Scan a page's code first.")
    try:
        outcome = await blocking(station.scan, envelope_id, text[:200], viewer.email)
    except ScanRefused as refused:
        return await station_page(request, viewer, problem=str(refused))
    return await station_page(request, viewer, [outcome], outcome.envelope)


async def scan_image(request: Request, viewer: Viewer, form: FormData) -> Response:
    station, envelope_id = _target(request)
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        return await station_page(request, viewer, problem="Choose a picture of the page first.")
    data = await upload.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        return await station_page(request, viewer, problem="That picture is too large (15 MB).")
    codes = await blocking(decode_codes, data)
    if not codes:
        return await station_page(
            request,
            viewer,
            problem="No page code was found in that picture: photograph the code square-on, "
            "in focus, or type it in.",
        )
    outcomes = []
    try:
        for text in codes:
            outcome = await blocking(station.scan, envelope_id, text, viewer.email)
            outcomes.append(outcome)
    except ScanRefused as refused:
        return await station_page(request, viewer, problem=str(refused))
    return await station_page(request, viewer, outcomes, outcomes[-1].envelope)


async def dispatch(request: Request, viewer: Viewer, _form: FormData) -> Response:
    station, envelope_id = _target(request)
    try:
        outcome = await blocking(station.dispatch, envelope_id, viewer.email)
    except ScanRefused as refused:
        return await station_page(request, viewer, problem=str(refused))
    if outcome.status == "dispatched":  # the next envelope starts empty
        return await station_page(request, viewer, [outcome], None)
    return await station_page(request, viewer, [outcome], outcome.envelope)


async def abandon(request: Request, viewer: Viewer, _form: FormData) -> Response:
    station, envelope_id = _target(request)
    try:
        await blocking(station.abandon, envelope_id, viewer.email)
    except ScanRefused as refused:
        return error_page(request, viewer, 409, "Not your envelope", str(refused), reason="scan")
    return RedirectResponse("/scan", status_code=303)
