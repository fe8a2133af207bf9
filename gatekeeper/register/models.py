"""The register's tables: one row per entry as it stands now, and every version it ever had.

`register_entries` holds near-misses the system recorded itself and the
incidents and events people entered, with what governance filters and counts
by. An automatic entry names its source (`source_kind`, `source_id`: a
blocked item, a decision, a missed canary, a scan alarm); the unique pair makes
a second node's sync of the same fact a no-op. `register_versions` keeps every
version of every entry, the first included, and is append-only: the migration
installs triggers that refuse UPDATE and DELETE there, and DELETE of an entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gatekeeper.store.models import Base, utcnow


class RegisterEntry(Base):
    """A near-miss, incident or event, as its latest version says."""

    __tablename__ = "register_entries"
    __table_args__ = (UniqueConstraint("source_kind", "source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # near_miss, incident, event
    source_kind: Mapped[str] = mapped_column(String(16))  # blocked, returned, ..., manual
    source_id: Mapped[int | None] = mapped_column(Integer)  # None for entries people made
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), index=True
    )
    item_ref: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    cause: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(4))
    checks: Mapped[list[str]] = mapped_column(default=list)
    team: Mapped[str | None] = mapped_column(String(100))
    sender: Mapped[str | None] = mapped_column(String(254))
    decided_by: Mapped[str | None] = mapped_column(String(254))
    case_ids: Mapped[list[str]] = mapped_column(default=list)
    data_subjects: Mapped[list[str]] = mapped_column(default=list)
    people_affected: Mapped[int] = mapped_column(Integer, default=0)
    data_kinds: Mapped[list[str]] = mapped_column(default=list)
    special_categories: Mapped[list[str]] = mapped_column(default=list)
    summary: Mapped[str] = mapped_column(Text, default="")
    consequences: Mapped[str] = mapped_column(Text, default="")
    mitigation: Mapped[str] = mapped_column(Text, default="")
    reporter: Mapped[str] = mapped_column(String(200), default="")
    occurred_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    discovered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    reportable: Mapped[bool] = mapped_column(Boolean, default=False)
    reported: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    regulator_ref: Mapped[str] = mapped_column(String(100), default="")
    report_reason: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(254))
    version: Mapped[int] = mapped_column(Integer, default=1)


# Reports and the list select by when an entry was discovered (a catch is its discovery).
Index("ix_register_entries_discovered_at", RegisterEntry.discovered_at)


class RegisterVersion(Base):
    """One version of an entry: every field as it stood, who made it, when and why."""

    __tablename__ = "register_versions"
    __table_args__ = (UniqueConstraint("entry_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("register_entries.id"))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(254))
    note: Mapped[str] = mapped_column(Text, default="")
    changed: Mapped[list[str]] = mapped_column(default=list)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
