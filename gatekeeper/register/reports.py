"""The figures governance reports per financial year, each as a table that also exports as CSV.

The classes an FOI request or an annual report asks for: incidents reported to
the regulator, other incidents, events, near misses; counted by Cabinet Office
category, cause, channel, team and month. An entry counts in the year (and
month) of its discovery on the London clock.

Besides the register: the false-alarm rate of each check (of the held items a
checker judged, the share approved: held for nothing), and each checker's
canary results.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, exists, select

from gatekeeper.register.causes import Category, Cause, EntryKind, acting_checks, label_of
from gatekeeper.register.entries import ENTRIES
from gatekeeper.register.years import FinancialYear, month_of
from gatekeeper.smtp.outbound import aware
from gatekeeper.store.approval import Canary, CanaryOutcome
from gatekeeper.store.correspondence import DecisionAction, HumanDecision, Item

ITEMS = cast(Table, Item.__table__)
DECISIONS = cast(Table, HumanDecision.__table__)
CANARIES = cast(Table, Canary.__table__)

# The classes an FOI answer counts, in the order it lists them.
CLASSES: tuple[tuple[str, str], ...] = (
    ("reported", "reported to the regulator"),
    ("incident", "other incidents"),
    ("event", "events"),
    ("near_miss", "near misses"),
)
CLASS_LABELS = dict(CLASSES)
_JUDGED = (DecisionAction.APPROVE, DecisionAction.RETURN, DecisionAction.CORRECT)


@dataclass(frozen=True)
class ReportTable:
    """One table of a report: what the page shows, the CLI prints and the CSV holds."""

    name: str  # stable, for file names and `--table`
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def cell(self, row_label: str, column: str) -> Any:
        index = self.columns.index(column)
        return next(row[index] for row in self.rows if row[0] == row_label)


@dataclass(frozen=True)
class YearReport:
    year: FinancialYear
    tables: tuple[ReportTable, ...]

    def table(self, name: str) -> ReportTable:
        return next(t for t in self.tables if t.name == name)


@dataclass(frozen=True)
class _Counted:
    cls: str
    category: str
    cause: str
    channel: str
    team: str
    month: dt.date


def class_of(kind: str, reported: bool) -> str:
    """The FOI class of an entry: reported incidents apart from the rest."""
    if kind == EntryKind.INCIDENT.value and reported:
        return "reported"
    return kind


def year_report(conn: Connection, year: FinancialYear) -> YearReport:
    """Every table of the report for `year`."""
    start, end = year.bounds
    rows = conn.execute(
        select(
            ENTRIES.c.kind,
            ENTRIES.c.reported,
            ENTRIES.c.category,
            ENTRIES.c.cause,
            ENTRIES.c.channel,
            ENTRIES.c.team,
            ENTRIES.c.discovered_at,
        ).where(ENTRIES.c.discovered_at >= start, ENTRIES.c.discovered_at < end)
    ).all()
    counted = [
        _Counted(
            cls=class_of(r.kind, bool(r.reported)),
            category=r.category,
            cause=r.cause,
            channel=r.channel,
            team=r.team or "(no team)",
            month=month_of(aware(r.discovered_at)),
        )
        for r in rows
    ]
    label = year.label
    return YearReport(
        year,
        (
            _summary(counted, label),
            _near_misses(counted, label),
            _by(counted, "category", f"By category, {label}", [c.value for c in Category]),
            _by(counted, "cause", f"By cause, {label}", [c.value for c in Cause]),
            _by(counted, "channel", f"By channel, {label}", []),
            _by(counted, "team", f"By team, {label}", []),
            _monthly(counted, year),
            false_alarms(conn, year),
            canary_results(conn, year),
        ),
    )


def _summary(counted: Sequence[_Counted], label: str) -> ReportTable:
    tally = Counter(c.cls for c in counted)
    rows = [(text, tally[cls]) for cls, text in CLASSES]
    rows.append(("total", len(counted)))
    return ReportTable(
        "summary",
        f"Register entries, {label}",
        ("class", "count"),
        tuple(rows),
        note="An entry counts in the year of its discovery (London time).",
    )


def _near_misses(counted: Sequence[_Counted], label: str) -> ReportTable:
    """The one-click answer: near misses by cause, across the categories."""
    near = [c for c in counted if c.cls == EntryKind.NEAR_MISS.value]
    categories = [c.value for c in Category]
    tally = Counter((c.cause, c.category) for c in near)
    rows = []
    for cause in Cause:
        counts = [tally[(cause.value, cat)] for cat in categories]
        rows.append((cause.label, *counts, sum(counts)))
    totals = [sum(1 for c in near if c.category == cat) for cat in categories]
    rows.append(("total", *totals, len(near)))
    return ReportTable(
        "near_misses",
        f"Near misses by cause and category, {label}",
        ("cause", *(f"category {c}" for c in categories), "total"),
        tuple(rows),
        note="Categories: " + "; ".join(Category(c).label for c in categories) + ".",
    )


def _by(counted: Sequence[_Counted], field: str, title: str, always: Sequence[str]) -> ReportTable:
    values = list(dict.fromkeys([*always, *sorted({getattr(c, field) for c in counted})]))
    tally = Counter((getattr(c, field), c.cls) for c in counted)
    rows = []
    for value in values:
        counts = [tally[(value, cls)] for cls, _ in CLASSES]
        rows.append((label_of(value), *counts, sum(counts)))
    totals = [sum(1 for c in counted if c.cls == cls) for cls, _ in CLASSES]
    rows.append(("total", *totals, len(counted)))
    return ReportTable(
        f"by_{field}",
        title,
        (field, *(text for _, text in CLASSES), "total"),
        tuple(rows),
    )


def _monthly(counted: Sequence[_Counted], year: FinancialYear) -> ReportTable:
    tally = Counter((c.month, c.cls) for c in counted)
    rows = []
    for month in year.months():
        counts = [tally[(month, cls)] for cls, _ in CLASSES]
        rows.append((month.strftime("%Y-%m"), *counts, sum(counts)))
    return ReportTable(
        "monthly",
        f"By month, {year.label}",
        ("month", *(text for _, text in CLASSES), "total"),
        tuple(rows),
    )


def false_alarms(conn: Connection, year: FinancialYear) -> ReportTable:
    """Per check: the held items a checker judged in `year`, and the share they approved."""
    start, end = year.bounds
    canary = exists().where(CANARIES.c.item_id == ITEMS.c.id)
    rows = conn.execute(
        select(ITEMS.c.findings, DECISIONS.c.action)
        .join(DECISIONS, DECISIONS.c.item_id == ITEMS.c.id)
        .where(DECISIONS.c.at >= start, DECISIONS.c.at < end, ~canary)
    ).all()
    tally: Counter[tuple[str, str]] = Counter()
    for findings, action in rows:
        for check in acting_checks(findings):
            tally[(check, action)] += 1
    checks = sorted({check for check, _ in tally})
    out = []
    for check in checks:
        counts = {a: tally[(check, a.value)] for a in DecisionAction}
        judged = sum(counts[a] for a in _JUDGED)
        approved = counts[DecisionAction.APPROVE]
        rate = f"{100 * approved / judged:.1f}%" if judged else "-"
        out.append(
            (
                check,
                judged,
                approved,
                counts[DecisionAction.RETURN],
                counts[DecisionAction.CORRECT],
                rate,
                counts[DecisionAction.WITHDRAW] + counts[DecisionAction.EXPIRE],
            )
        )
    return ReportTable(
        "false_alarms",
        f"False alarms by check, {year.label}",
        (
            "check",
            "held and judged",
            "approved",
            "returned",
            "corrected",
            "false-alarm rate",
            "withdrawn or expired",
        ),
        tuple(out),
        note=(
            "Of the items a check held that a checker judged (approved, returned or corrected),"
            " the share approved: held for nothing. Withdrawn and expired holds were not judged."
        ),
    )


def canary_results(conn: Connection, year: FinancialYear) -> ReportTable:
    """Per checker: canaries caught (returned or corrected) and missed (approved) in `year`."""
    start, end = year.bounds
    rows = conn.execute(
        select(CANARIES.c.checker, CANARIES.c.outcome).where(
            CANARIES.c.scored_at >= start, CANARIES.c.scored_at < end
        )
    ).all()
    tally = Counter((r.checker or "(nobody: expired)", r.outcome) for r in rows)
    checkers = sorted({checker for checker, _ in tally})
    out = []
    for checker in checkers:
        caught = tally[(checker, CanaryOutcome.CAUGHT.value)]
        missed = tally[(checker, CanaryOutcome.MISSED.value)]
        expired = tally[(checker, CanaryOutcome.EXPIRED.value)]
        decided = caught + missed
        rate = f"{100 * caught / decided:.1f}%" if decided else "-"
        out.append((checker, caught, missed, expired, rate))
    return ReportTable(
        "canaries",
        f"Canary results by checker, {year.label}",
        ("checker", "caught", "missed", "expired", "caught rate"),
        tuple(out),
        note="Canaries are planted mistakes: caught = returned or corrected, missed = approved.",
    )
