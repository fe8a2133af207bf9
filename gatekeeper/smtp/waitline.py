"""Callers on the event loop waiting their turn, woken first come, first served."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class WaitLine:
    """A line of futures: `join()` one to wait on, `wake_one()` the longest waiting."""

    def __init__(self) -> None:
        self._waiting: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        """Callers still waiting."""
        return sum(not waiter.done() for waiter in self._waiting)

    def join(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return waiter

    def leave(self, waiter: asyncio.Future[None]) -> None:
        """Stop waiting (a waiter that gave up; one already woken has left)."""
        with contextlib.suppress(ValueError):
            self._waiting.remove(waiter)

    def wake_one(self) -> bool:
        """Wake the longest-waiting caller still waiting; False if there is none."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a cancelled one gave up
                waiter.set_result(None)
                return True
        return False

    def wake_all(self) -> None:
        while self.wake_one():
            pass
