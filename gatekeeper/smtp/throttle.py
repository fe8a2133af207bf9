"""Failed AUTH attempts, counted per client address and per user name, refused past a limit.

After `limit` failed attempts within `window` seconds from one client address
(an IPv6 client by its /64, which one machine usually holds whole) or for one
user name, further AUTH from that address or for that name is refused before
the password is looked at, so a refusal says nothing about a guess, until the
oldest of those failures is `window` seconds old. An attempt in progress counts
as a failure until it is decided: parallel connections cannot race past the
limit while their passwords are being checked.

The count lives in this process's memory, so each relay node keeps its own: a
client spreading its connections over N nodes gets at most N times `limit`
tries per window. Counting in the store would make it exact, at the price of a
query on every AUTH (on the audit table, which has no index for it); a limit
per node keeps AUTH free of the store and still turns a password search of
millions of tries into one of a few thousand a day per address.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from gatekeeper.contact import email_key

# Keys remembered at most; past it the least recently failed are forgotten first.
MAX_KEYS = 100_000


def client_key(address: str) -> str:
    """The key of a client address: an IPv4 address, or an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"client:{address}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return f"client:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"client:{ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip}"


def login_key(login: str) -> str:
    """The key of a user name (cut short: an AUTH line may be a megabyte long)."""
    return f"login:{email_key(login)[:254]}"


class AuthThrottle:
    """Failures per key within a sliding window; a limit of 0 turns it off."""

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._pending: dict[str, int] = {}
        self._reported: set[str] = set()  # refused since their last failure was counted

    def first_refusal(self, keys: Sequence[str]) -> bool:
        """Whether this refusal is the first for any of `keys` since their block began: the
        audit trail records a block once, not every try a client makes while blocked."""
        new = [key for key in keys if key not in self._reported and key in self._failures]
        self._reported.update(new)
        return bool(new)

    def wait(self, keys: Sequence[str]) -> float:
        """Seconds until an attempt for all of `keys` is allowed; 0 when it is now."""
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        longest = 0.0
        for key in keys:
            failures = self._recent(key, now)
            pending = self._pending.get(key, 0)
            if len(failures) + pending < self.limit:
                continue
            # the failure whose expiry brings the count under the limit
            expiring = len(failures) + pending - self.limit
            until = failures[expiring] + self.window if expiring < len(failures) else now + 1
            longest = max(longest, until - now, 1.0)
        return longest

    def begin(self, keys: Sequence[str]) -> bool:
        """Take one attempt for `keys` if allowed (then `end` must follow); False if not."""
        if self.wait(keys):
            return False
        for key in keys:
            self._pending[key] = self._pending.get(key, 0) + 1
        return True

    def end(self, keys: Sequence[str], *, failed: bool) -> None:
        """The attempt `begin` took is decided; a failed one counts for each of `keys`."""
        now = self.clock()
        for key in keys:
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)
            if failed and self.limit > 0:
                self._failures.setdefault(key, deque()).append(now)
                self._failures.move_to_end(key)
                self._reported.discard(key)
        # The least recently failed come first: forget those past the window, and past
        # MAX_KEYS the oldest (an attacker with many addresses must not grow this forever).
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if oldest[-1] > now - self.window and len(self._failures) <= MAX_KEYS:
                break
            self._reported.discard(self._failures.popitem(last=False)[0])

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            self._reported.discard(key)
        return failures


def minutes(seconds: float) -> str:
    """ "1 minute", "15 minutes": a wait as a member of staff reads it."""
    whole = max(1, math.ceil(seconds / 60))
    return f"{whole} minute" if whole == 1 else f"{whole} minutes"
