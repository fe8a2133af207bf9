"""The monthly trend as an SVG bar chart, drawn on the server: no chart library, no script.

`monthly_chart` turns the report's monthly table into geometry (stacked bars
per month, one colour per class, a scale with round steps); the page's
template draws it as SVG with classes for colour, so it works under a strict
Content-Security-Policy and prints as it shows.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from gatekeeper.register.reports import CLASSES, ReportTable

WIDTH = 760
HEIGHT = 300
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 40
_STEPS = (1, 2, 5)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # a class of CLASSES: the CSS class `series-<name>` colours it
    title: str  # what a pointer or a screen reader is told


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    bars: tuple[Bar, ...]
    months: tuple[Tick, ...]  # x positions (bar centres) and labels
    scale: tuple[Tick, ...]  # y positions and values
    legend: tuple[tuple[float, str, str], ...]  # (x, series, label)
    description: str


def nice_top(largest: int) -> tuple[int, int]:
    """(top of the scale, step): round numbers at or above `largest`, about five steps."""
    if largest <= 0:
        return 1, 1
    rough = largest / 5
    power = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next((s * power for s in _STEPS if s * power >= rough), 10 * power)
    return math.ceil(largest / step) * step, step


def monthly_chart(table: ReportTable) -> Chart:
    """Stacked bars, one per month of `table` (the report's `monthly` table)."""
    series = [name for name, _ in CLASSES]
    labels = dict(CLASSES)
    columns = [table.columns.index(labels[name]) for name in series]
    totals = [sum(int(row[c]) for c in columns) for row in table.rows]
    top, step = nice_top(max(totals, default=0))
    plot_left, plot_right = float(LEFT), float(WIDTH - RIGHT)
    plot_top, plot_bottom = float(TOP), float(HEIGHT - BOTTOM)
    slot = (plot_right - plot_left) / max(1, len(table.rows))
    bar_width = slot * 0.64
    per_unit = (plot_bottom - plot_top) / top
    bars: list[Bar] = []
    months: list[Tick] = []
    for index, row in enumerate(table.rows):
        month = dt.date.fromisoformat(f"{row[0]}-01")
        x = plot_left + slot * index + (slot - bar_width) / 2
        base = plot_bottom
        for name, column in zip(series, columns, strict=True):
            count = int(row[column])
            if not count:
                continue
            height = count * per_unit
            base -= height
            bars.append(
                Bar(
                    round(x, 1),
                    round(base, 1),
                    round(bar_width, 1),
                    round(height, 1),
                    name,
                    f"{month:%B %Y}: {count} {labels[name]}",
                )
            )
        months.append(Tick(round(x + bar_width / 2, 1), f"{month:%b}"))
    scale = tuple(
        Tick(round(plot_bottom - value * per_unit, 1), str(value))
        for value in range(0, top + 1, step)
    )
    busiest = max(zip(totals, table.rows, strict=True), default=(0, ("",)))
    description = f"{table.title}: {sum(totals)} entries in all" + (
        f"; the most in {dt.date.fromisoformat(f'{busiest[1][0]}-01'):%B %Y} ({busiest[0]})"
        if busiest[0]
        else ""
    )
    return Chart(
        WIDTH,
        HEIGHT,
        plot_left,
        plot_right,
        plot_top,
        plot_bottom,
        tuple(bars),
        tuple(months),
        scale,
        _legend(plot_left, [(name, labels[name]) for name in series]),
        description,
    )


def _legend(left: float, entries: list[tuple[str, str]]) -> tuple[tuple[float, str, str], ...]:
    """Legend keys in a row, each after the last one's label (about 7 units a character)."""
    placed = []
    x = left
    for series, label in entries:
        placed.append((round(x, 1), series, label))
        x += 12 + 6 + 7 * len(label) + 24
    return tuple(placed)
