"""Financial years (1 April to 31 March) and months, in the organisation's own time zone.

An entry belongs to the day it was discovered on a clock in London: 00:30 on
1 April BST is 23:30 on 31 March UTC, and falls in the new year. The store
keeps UTC; these turn local dates into UTC bounds and UTC moments into local
dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
FIRST_MONTH = 4  # April


def local(moment: dt.datetime) -> dt.datetime:
    """A stored moment on the London clock (a naive one, as SQLite returns it, is UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(LONDON)


def start_of_day(day: dt.date) -> dt.datetime:
    """Local midnight at the start of `day`, in UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=LONDON).astimezone(dt.UTC)


@dataclass(frozen=True, order=True)
class FinancialYear:
    """The year from 1 April `start_year` to 31 March the year after."""

    start_year: int

    @classmethod
    def of(cls, moment: dt.datetime | dt.date) -> FinancialYear:
        day = local(moment).date() if isinstance(moment, dt.datetime) else moment
        return cls(day.year if day.month >= FIRST_MONTH else day.year - 1)

    @property
    def label(self) -> str:
        """`2025-26`, as annual reports write it."""
        return f"{self.start_year}-{(self.start_year + 1) % 100:02d}"

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.start_year, FIRST_MONTH, 1)

    @property
    def last_day(self) -> dt.date:
        return dt.date(self.start_year + 1, FIRST_MONTH, 1) - dt.timedelta(days=1)

    @property
    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in UTC: local midnight on 1 April to local midnight a year later."""
        return start_of_day(self.first_day), start_of_day(self.last_day + dt.timedelta(days=1))

    def months(self) -> list[dt.date]:
        """The first day of each month, April to March."""
        return [
            dt.date(self.start_year + (m < FIRST_MONTH), m, 1)
            for m in (*range(FIRST_MONTH, 13), *range(1, FIRST_MONTH))
        ]

    def previous(self) -> FinancialYear:
        return FinancialYear(self.start_year - 1)

    def contains(self, moment: dt.datetime) -> bool:
        return FinancialYear.of(moment) == self


def month_of(moment: dt.datetime) -> dt.date:
    """The first day of the local month `moment` falls in."""
    day = local(moment).date()
    return day.replace(day=1)
