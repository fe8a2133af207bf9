"""The regulator's clock: a reportable breach is reported within 72 hours of its discovery."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gatekeeper.register.causes import EntryKind
from gatekeeper.register.entries import Entry

REPORT_WITHIN = dt.timedelta(hours=72)


def deadline_of(discovered_at: dt.datetime) -> dt.datetime:
    """When a report to the regulator is due: 72 hours after the discovery, to the second."""
    return discovered_at + REPORT_WITHIN


@dataclass(frozen=True)
class RegulatorClock:
    deadline: dt.datetime
    now: dt.datetime
    reported_at: dt.datetime | None = None

    @property
    def reported(self) -> bool:
        return self.reported_at is not None

    @property
    def remaining(self) -> dt.timedelta:
        """Time left before the deadline (negative once it has passed)."""
        return self.deadline - (self.reported_at or self.now)

    @property
    def overdue(self) -> bool:
        """Past the deadline unreported, or reported after it (at the deadline is in time)."""
        return self.remaining < dt.timedelta(0)

    def describe(self) -> str:
        """`47 h 12 min left`, `overdue by 3 h 5 min`, `reported in time`, `reported 2 h late`."""
        if self.reported:
            if self.overdue:
                return f"reported {duration(-self.remaining)} late"
            return "reported in time"
        if self.overdue:
            return f"overdue by {duration(-self.remaining)}"
        return f"{duration(self.remaining)} left"


def regulator_clock(entry: Entry, now: dt.datetime) -> RegulatorClock | None:
    """The clock of an incident reportable to the regulator; None for any other entry."""
    if entry.kind != EntryKind.INCIDENT.value or not entry.reportable:
        return None
    reported_at = (entry.reported_at or entry.recorded_at) if entry.reported else None
    return RegulatorClock(deadline_of(entry.discovered_at), now, reported_at)


def duration(span: dt.timedelta) -> str:
    """`4 d 3 h`, `47 h 12 min`, `5 min`, `under 1 min`: whole minutes, rounded down."""
    minutes = max(0, int(span.total_seconds() // 60))
    if not minutes:
        return "under 1 min"
    hours, minutes = divmod(minutes, 60)
    if hours >= 72:
        days, hours = divmod(hours, 24)
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"
