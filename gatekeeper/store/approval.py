"""The store's tables for the second check: canaries, flags on held items, periodic work, keys.

A canary is a held item like any other (same `items` row, same bytes in
`item_contents`); its row here is the only thing that marks it, so nothing a
checker sees can tell. `held_flags` records what governance reviews about an
item (escalated, decided suspiciously fast), once each: the primary key makes a
second node's attempt a no-op. `periodic_tasks` lets exactly one of several web
nodes run each round of the sweep; `web_keys` holds the key that signs session
cookies, generated once and shared by every node through the store.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gatekeeper.store.models import Base, utcnow


class CanaryOutcome(StrEnum):
    CAUGHT = "caught"  # returned or corrected: the checker saw the mistake
    MISSED = "missed"  # approved: it would have gone to the wrong person
    EXPIRED = "expired"  # nobody decided before it expired


class HeldFlag(StrEnum):
    ESCALATED = "escalated"
    FAST_DECISION = "fast_decision"


class Canary(Base):
    """A synthetic mis-addressed item planted in the queue; never sent anywhere."""

    __tablename__ = "canaries"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[str] = mapped_column(String(64))
    planted: Mapped[str] = mapped_column(String(254))  # the wrong address it was sent to
    expected: Mapped[str] = mapped_column(String(254))  # the record's address for the case
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(16))
    checker: Mapped[str | None] = mapped_column(String(254))
    scored_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class HeldItemFlag(Base):
    """Something governance should know about a held item, recorded once."""

    __tablename__ = "held_flags"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    flag: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PeriodicTask(Base):
    """When a periodic task last ran; a node runs a round only if it wins the conditional UPDATE."""

    __tablename__ = "periodic_tasks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    node: Mapped[str | None] = mapped_column(String(140))


class WebKey(Base):
    """A secret the web nodes share (the session-signing key), made once on first start."""

    __tablename__ = "web_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
