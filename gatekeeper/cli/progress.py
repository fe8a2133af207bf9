"""Progress for long imports: a bar on a terminal, nothing in a pipe or a log."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def byte_progress(total: int | None, label: str) -> Iterator[Callable[[int], None]]:
    """Yields a callback to report bytes done; draws a bar on stderr only when it is a terminal."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    # A terminal that reports no size (a bare pty) would hide the bar: ask, with a fallback.
    size = shutil.get_terminal_size((100, 24))
    with tqdm(
        total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
        file=sys.stderr, mininterval=0.2, ncols=min(max(size.columns, 40), 120),
        nrows=max(size.lines, 2),
    ) as bar:  # fmt: skip
        yield bar.update


@contextmanager
def count_progress(total: int | None, label: str, unit: str) -> Iterator[Callable[[int], None]]:
    """Like `byte_progress`, counting things (events, rows) instead of bytes."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    size = shutil.get_terminal_size((100, 24))
    with tqdm(
        total=total, desc=label, unit=f" {unit}", unit_scale=True, leave=False, file=sys.stderr,
        mininterval=0.2, ncols=min(max(size.columns, 40), 120), nrows=max(size.lines, 2),
    ) as bar:  # fmt: skip
        yield bar.update
