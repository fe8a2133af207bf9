"""The store's tables for letters: the print job behind each, and the postal room's scans.

A letter is an `items` row (channel `post`, its PDF in `item_contents`) plus
one `letters` row: the CUPS job it came from (server, queue, job id: with the
document's hash in `items.sha256`, what recognises the job when CUPS runs it
again after approval), its page count and addressee, when it printed, and
when and by whom it was dispatched (proof of posting).

At the scan station every envelope being filled is a `scan_envelopes` row and
every code scanned into it a `scanned_pages` row. What must not happen (a page
of another letter, a missing page, a letter never released) is a
`scan_alarms` row with cause `wrong_envelope`: a near-miss the register
(issue 7) takes up.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gatekeeper.store.models import Base, utcnow


class EnvelopeState(StrEnum):
    OPEN = "open"  # pages are being scanned into it
    COMPLETE = "complete"  # every page of one released letter, nothing else
    DISPATCHED = "dispatched"  # sealed and posted
    ABANDONED = "abandoned"  # the operator gave up on it (after an alarm, say)


class AlarmKind(StrEnum):
    FOREIGN_PAGE = "foreign_page"  # a page of another letter scanned into the envelope
    MISSING_PAGES = "missing_pages"  # dispatch asked for before every page was scanned
    NOT_RELEASED = "not_released"  # a letter the gate never released (held, blocked, unknown)


WRONG_ENVELOPE = "wrong_envelope"  # the near-miss cause every scan alarm carries


class Letter(Base):
    __tablename__ = "letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    addressee: Mapped[str] = mapped_column(Text, default="")  # the address block, one line
    party_id: Mapped[str | None] = mapped_column(String(64))  # the addressee, when a party
    print_server: Mapped[str | None] = mapped_column(String(255))  # CUPS server host[:port]
    print_queue: Mapped[str | None] = mapped_column(String(127))
    print_job: Mapped[int | None] = mapped_column(Integer)
    job_user: Mapped[str | None] = mapped_column(String(254))  # the CUPS user who printed it
    title: Mapped[str] = mapped_column(Text, default="")  # empty: sealed as the item's subject
    print_count: Mapped[int] = mapped_column(Integer, default=0)
    printed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # What Gatekeeper last did to the held CUPS job after a decision ("resumed", "cancelled").
    job_action: Mapped[str | None] = mapped_column(String(16))
    job_action_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_by: Mapped[str | None] = mapped_column(String(254))


Index("ix_letters_print_job", Letter.print_job)


class ScanEnvelope(Base):
    """One envelope being filled at the scan station, by one operator."""

    __tablename__ = "scan_envelopes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator: Mapped[str] = mapped_column(String(254))
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default=EnvelopeState.OPEN.value)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ScannedPage(Base):
    """A page code scanned into an envelope; `accepted` is false for one that does not belong."""

    __tablename__ = "scanned_pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    envelope_id: Mapped[int] = mapped_column(
        ForeignKey("scan_envelopes.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(100))
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id", ondelete="SET NULL"))
    page: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[bool] = mapped_column(Boolean, default=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScanAlarm(Base):
    """A near-miss at the scan station: something was about to go in the wrong envelope."""

    __tablename__ = "scan_alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    operator: Mapped[str] = mapped_column(String(254))
    cause: Mapped[str] = mapped_column(String(32), default=WRONG_ENVELOPE)
    kind: Mapped[str] = mapped_column(String(32))
    envelope_id: Mapped[int | None] = mapped_column(
        ForeignKey("scan_envelopes.id", ondelete="SET NULL"), index=True
    )
    # The letter the envelope holds, and the one the stray page belongs to.
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    other_item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
