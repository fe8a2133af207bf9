"""The scan station's rules: an envelope holds exactly the pages of one released letter.

The postal-room operator opens an envelope, scans the code on each page going
into it (a barcode scanner typing the code, or a photographed page decoded
here with zxing-cpp), and seals it only when the station says it is complete:
every page, 1 to N, of one letter the gate released, and nothing else. Then
"dispatched" is recorded with the time and the operator: proof of posting.

What must not go out raises an alarm, a near-miss of cause "wrong envelope"
recorded in `scan_alarms` with an audit event:
- a page of another letter scanned into the envelope (`foreign_page`);
- sealing with pages missing (`missing_pages`);
- a letter the gate never released: held, blocked, returned, unknown, or
  already dispatched once (`not_released`).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, insert, select, update

from gatekeeper.post.pagecode import PageCode
from gatekeeper.smtp.outbound import aware, record_audit
from gatekeeper.store.correspondence import Item, ItemState
from gatekeeper.store.letters import (
    WRONG_ENVELOPE,
    AlarmKind,
    EnvelopeState,
    Letter,
    ScanAlarm,
    ScanEnvelope,
    ScannedPage,
)
from gatekeeper.store.models import utcnow

ITEMS = cast(Table, Item.__table__)
LETTERS = cast(Table, Letter.__table__)
ENVELOPES = cast(Table, ScanEnvelope.__table__)
PAGES = cast(Table, ScannedPage.__table__)
ALARMS = cast(Table, ScanAlarm.__table__)

# A letter in one of these states came out of the printer through the gate.
RELEASED_STATES = frozenset(
    {ItemState.RELEASED.value, ItemState.APPROVED.value, ItemState.PRINTED.value}
)


class ScanRefused(Exception):
    """The envelope is not one this operator can scan into (closed, or someone else's)."""


@dataclass(frozen=True)
class LetterView:
    id: int
    item_id: int
    ref: str
    addressee: str
    pages: int
    state: str
    party_id: str | None
    dispatched_at: dt.datetime | None
    dispatched_by: str | None


@dataclass(frozen=True)
class AlarmView:
    id: int
    at: dt.datetime
    kind: str
    summary: str


@dataclass(frozen=True)
class EnvelopeView:
    id: int
    operator: str
    state: str
    letter: LetterView | None
    scanned: tuple[int, ...]  # page numbers of the letter scanned in, in order
    alarms: tuple[AlarmView, ...]

    @property
    def missing(self) -> tuple[int, ...]:
        if self.letter is None:
            return ()
        return tuple(n for n in range(1, self.letter.pages + 1) if n not in self.scanned)

    @property
    def complete(self) -> bool:
        return self.letter is not None and not self.missing


@dataclass(frozen=True)
class ScanOutcome:
    status: str  # "added", "complete", "duplicate", "invalid", "alarm", "dispatched"
    message: str
    envelope: EnvelopeView
    alarm: AlarmView | None = None


def decode_codes(image: bytes) -> list[str]:
    """The page codes zxing-cpp finds in a photographed or scanned page (PNG, JPEG, ...)."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        picture = Image.open(io.BytesIO(image))
        picture.load()
    except (UnidentifiedImageError, OSError, ValueError):
        return []
    return [found.text for found in zxingcpp.read_barcodes(picture.convert("L"))]


class ScanStation:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- envelopes ------------------------------------------------------------------------

    def open_envelope(self, operator: str) -> EnvelopeView:
        with self.engine.begin() as conn:
            envelope_id: int = conn.execute(
                insert(ENVELOPES).returning(ENVELOPES.c.id),
                {"operator": operator, "state": EnvelopeState.OPEN.value, "opened_at": utcnow()},
            ).scalar_one()
        return self.envelope(envelope_id)

    def current(self, operator: str) -> EnvelopeView | None:
        """The operator's envelope still being filled (open or complete, not sealed)."""
        with self.engine.connect() as conn:
            envelope_id = conn.execute(
                select(ENVELOPES.c.id)
                .where(
                    ENVELOPES.c.operator == operator,
                    ENVELOPES.c.state.in_([EnvelopeState.OPEN.value, EnvelopeState.COMPLETE.value]),
                )
                .order_by(ENVELOPES.c.id.desc())
            ).scalar()
        return self.envelope(envelope_id) if envelope_id is not None else None

    def envelope(self, envelope_id: int) -> EnvelopeView:
        with self.engine.connect() as conn:
            return _envelope(conn, envelope_id)

    def abandon(self, envelope_id: int, operator: str) -> EnvelopeView:
        """Give up on an envelope (its pages go back to the tray); nothing is dispatched."""
        with self.engine.begin() as conn:
            self._fillable(conn, envelope_id, operator)
            conn.execute(
                update(ENVELOPES)
                .where(ENVELOPES.c.id == envelope_id)
                .values(state=EnvelopeState.ABANDONED.value, closed_at=utcnow())
            )
            record_audit(conn, "scan.abandoned", actor=operator, details={"envelope": envelope_id})
        return self.envelope(envelope_id)

    # -- scanning -------------------------------------------------------------------------

    def scan(self, envelope_id: int, text: str, operator: str) -> ScanOutcome:
        """One page's code scanned into the envelope."""
        code = PageCode.parse(text)
        with self.engine.begin() as conn:
            envelope = self._fillable(conn, envelope_id, operator)
            if code is None:
                return ScanOutcome(
                    "invalid",
                    "That is not a Gatekeeper page code: scan the code on the page.",
                    envelope,
                )
            letter = _letter_by_ref(conn, code.ref)
            own = envelope.letter
            if letter is None or letter.pages != code.pages:
                return self._alarm(
                    conn,
                    envelope,
                    operator,
                    AlarmKind.NOT_RELEASED,
                    f"page {code.page} of {code.ref} belongs to no letter Gatekeeper released: "
                    "do not post it; give it to a checker",
                    other=letter,
                    code=code,
                )
            if own is not None and own.id != letter.id:
                return self._alarm(
                    conn,
                    envelope,
                    operator,
                    AlarmKind.FOREIGN_PAGE,
                    f"page {code.page} of letter {letter.ref} (to {letter.addressee}) does not "
                    f"belong in this envelope for letter {own.ref} (to {own.addressee}): "
                    "take it out",
                    other=letter,
                    code=code,
                )
            if letter.state not in RELEASED_STATES:
                return self._alarm(
                    conn,
                    envelope,
                    operator,
                    AlarmKind.NOT_RELEASED,
                    _not_released(letter),
                    other=letter,
                    code=code,
                )
            if own is None:
                conn.execute(
                    update(ENVELOPES)
                    .where(ENVELOPES.c.id == envelope.id)
                    .values(letter_id=letter.id)
                )
            if code.page in envelope.scanned:
                return ScanOutcome(
                    "duplicate", f"Page {code.page} is in this envelope already.", envelope
                )
            conn.execute(
                insert(PAGES),
                {
                    "envelope_id": envelope.id,
                    "code": str(code),
                    "letter_id": letter.id,
                    "page": code.page,
                    "pages": code.pages,
                    "accepted": True,
                    "at": utcnow(),
                },
            )
            updated = _envelope(conn, envelope.id)
            if updated.complete:
                conn.execute(
                    update(ENVELOPES)
                    .where(ENVELOPES.c.id == envelope.id)
                    .values(state=EnvelopeState.COMPLETE.value)
                )
                updated = _envelope(conn, envelope.id)
                message = (
                    f"Complete: all {letter.pages} pages of letter {letter.ref} to "
                    f"{letter.addressee}. Seal the envelope and dispatch it."
                )
                return ScanOutcome("complete", message, updated)
            missing = ", ".join(map(str, updated.missing))
            return ScanOutcome(
                "added",
                f"Page {code.page} of {letter.pages} added; still to scan: {missing}.",
                updated,
            )

    def dispatch(self, envelope_id: int, operator: str) -> ScanOutcome:
        """Seal and post the envelope: only when it holds exactly one released letter, whole."""
        with self.engine.begin() as conn:
            envelope = self._fillable(conn, envelope_id, operator)
            letter = envelope.letter
            if letter is None:
                return ScanOutcome("invalid", "Scan the pages first.", envelope)
            if not envelope.complete:
                missing = ", ".join(map(str, envelope.missing))
                return self._alarm(
                    conn,
                    envelope,
                    operator,
                    AlarmKind.MISSING_PAGES,
                    f"letter {letter.ref} to {letter.addressee} is missing page {missing} of "
                    f"{letter.pages}: find them before sealing the envelope",
                )
            now = utcnow()
            taken = conn.execute(
                update(LETTERS)
                .where(LETTERS.c.id == letter.id, LETTERS.c.dispatched_at.is_(None))
                .values(dispatched_at=now, dispatched_by=operator)
            ).rowcount
            if taken != 1:  # another envelope with the same letter was sealed first
                fresh = _letter_by_ref(conn, letter.ref)
                assert fresh is not None
                return self._alarm(
                    conn, envelope, operator, AlarmKind.NOT_RELEASED, _not_released(fresh)
                )
            conn.execute(
                update(ITEMS)
                .where(ITEMS.c.id == letter.item_id)
                .values(state=ItemState.DISPATCHED.value)
            )
            conn.execute(
                update(ENVELOPES)
                .where(ENVELOPES.c.id == envelope.id)
                .values(state=EnvelopeState.DISPATCHED.value, closed_at=now)
            )
            record_audit(
                conn,
                "post.dispatched",
                actor=operator,
                item_id=letter.item_id,
                details={
                    "ref": letter.ref,
                    "envelope": envelope.id,
                    "pages": letter.pages,
                    "at": now.isoformat(),
                },
            )
            done = _envelope(conn, envelope.id)
        when = now.strftime("%H:%M")
        return ScanOutcome(
            "dispatched",
            f"Dispatched at {when}: letter {letter.ref} to {letter.addressee}, by {operator}.",
            done,
        )

    def alarms(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest alarms, newest first, for the station's page and for the register."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ALARMS).order_by(ALARMS.c.id.desc()).limit(limit))
            return [dict(row._mapping) for row in rows]

    # -- inside -----------------------------------------------------------------------------

    def _fillable(self, conn: Connection, envelope_id: int, operator: str) -> EnvelopeView:
        envelope = _envelope(conn, envelope_id)
        if envelope.operator != operator:
            raise ScanRefused("this envelope is another operator's")
        if envelope.state not in (EnvelopeState.OPEN.value, EnvelopeState.COMPLETE.value):
            raise ScanRefused(f"this envelope is {envelope.state}: open a new one")
        return envelope

    def _alarm(
        self,
        conn: Connection,
        envelope: EnvelopeView,
        operator: str,
        kind: AlarmKind,
        summary: str,
        *,
        other: LetterView | None = None,
        code: PageCode | None = None,
    ) -> ScanOutcome:
        own = envelope.letter
        details = {
            "envelope": envelope.id,
            "letter_ref": own.ref if own else None,
            "other_ref": other.ref if other else None,
            "code": str(code) if code else None,
        }
        if code is not None:
            conn.execute(
                insert(PAGES),
                {
                    "envelope_id": envelope.id,
                    "code": str(code)[:100],
                    "letter_id": other.id if other else None,
                    "page": code.page,
                    "pages": code.pages,
                    "accepted": False,
                    "at": utcnow(),
                },
            )
        alarm_id: int = conn.execute(
            insert(ALARMS).returning(ALARMS.c.id),
            {
                "at": utcnow(),
                "operator": operator,
                "cause": WRONG_ENVELOPE,
                "kind": kind.value,
                "envelope_id": envelope.id,
                "item_id": own.item_id if own else (other.item_id if other else None),
                "other_item_id": other.item_id if other and own else None,
                "summary": summary,
                "details": details,
            },
        ).scalar_one()
        record_audit(
            conn,
            "scan.alarm",
            actor=operator,
            item_id=own.item_id if own else (other.item_id if other else None),
            details={"alarm": alarm_id, "cause": WRONG_ENVELOPE, "kind": kind.value, **details},
        )
        updated = _envelope(conn, envelope.id)
        alarm = next(a for a in updated.alarms if a.id == alarm_id)
        return ScanOutcome("alarm", summary[:1].upper() + summary[1:] + ".", updated, alarm)


def _not_released(letter: LetterView) -> str:
    if letter.dispatched_at is not None:
        when = aware(letter.dispatched_at).strftime("%Y-%m-%d %H:%M")
        return (
            f"letter {letter.ref} to {letter.addressee} was dispatched already ({when} by "
            f"{letter.dispatched_by}): this page must not go out again"
        )
    return (
        f"letter {letter.ref} to {letter.addressee} was never released by Gatekeeper (it is "
        f"{letter.state}): do not post it; give it to a checker"
    )


_LETTER_COLUMNS = (
    LETTERS.c.id,
    LETTERS.c.item_id,
    ITEMS.c.ref,
    LETTERS.c.addressee,
    LETTERS.c.pages,
    ITEMS.c.state,
    LETTERS.c.party_id,
    LETTERS.c.dispatched_at,
    LETTERS.c.dispatched_by,
)


def _letter_view(row: Any) -> LetterView:
    return LetterView(
        id=row.id,
        item_id=row.item_id,
        ref=row.ref,
        addressee=row.addressee or "(no addressee read)",
        pages=row.pages,
        state=row.state,
        party_id=row.party_id,
        dispatched_at=row.dispatched_at,
        dispatched_by=row.dispatched_by,
    )


def _letter_by_ref(conn: Connection, ref: str) -> LetterView | None:
    row = conn.execute(
        select(*_LETTER_COLUMNS)
        .join(ITEMS, ITEMS.c.id == LETTERS.c.item_id)
        .where(ITEMS.c.ref == ref.upper(), ITEMS.c.channel == "post")
    ).first()
    return _letter_view(row) if row else None


def _envelope(conn: Connection, envelope_id: int) -> EnvelopeView:
    row = conn.execute(select(ENVELOPES).where(ENVELOPES.c.id == envelope_id)).first()
    if row is None:
        raise ScanRefused(f"there is no envelope {envelope_id}")
    letter = None
    scanned: tuple[int, ...] = ()
    if row.letter_id is not None:
        found = conn.execute(
            select(*_LETTER_COLUMNS)
            .join(ITEMS, ITEMS.c.id == LETTERS.c.item_id)
            .where(LETTERS.c.id == row.letter_id)
        ).first()
        letter = _letter_view(found) if found else None
        pages = conn.execute(
            select(PAGES.c.page)
            .where(
                PAGES.c.envelope_id == envelope_id,
                PAGES.c.letter_id == row.letter_id,
                PAGES.c.accepted.is_(True),
            )
            .order_by(PAGES.c.id)
        ).scalars()
        scanned = tuple(dict.fromkeys(pages))
    alarms = tuple(
        AlarmView(a.id, aware(a.at), a.kind, a.summary)
        for a in conn.execute(
            select(ALARMS.c.id, ALARMS.c.at, ALARMS.c.kind, ALARMS.c.summary)
            .where(ALARMS.c.envelope_id == envelope_id)
            .order_by(ALARMS.c.id)
        )
    )
    return EnvelopeView(row.id, row.operator, row.state, letter, scanned, alarms)
