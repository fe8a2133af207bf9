"""Which CPUs the relay's processes run on.

The relay's own threads (the SMTP event loop, the store writer, the delivery
threads) take turns with one interpreter lock, so together they use one core at
most. Left to float, each hand-over of that lock can wake a thread on the other
core, and on a small virtual machine that wake-up, and the cold caches after it,
cost more than the work handed over. So `gatekeeper relay` keeps those threads on
one CPU (`relay_cpu`) and lets its gate workers, which do the heavy checking in
processes of their own, use every CPU it was given.
"""

from __future__ import annotations

import logging
import os

from gatekeeper.config import ConfigError

log = logging.getLogger(__name__)

AUTO = "auto"
NONE = "none"


def allowed_cpus() -> frozenset[int] | None:
    """The CPUs this process may run on; None where the system cannot say (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return frozenset(os.sched_getaffinity(0))


def chosen_cpu(setting: str, allowed: frozenset[int] | None) -> int | None:
    """The CPU `relay_cpu` names for the relay's threads, or None to leave them free."""
    value = setting.strip().lower()
    if value == NONE or allowed is None:
        return None
    if value == AUTO:
        # One CPU gives nothing to choose between: pinning would only take it from workers.
        return min(allowed) if len(allowed) > 1 else None
    if not value.isdigit():
        raise ConfigError(f"relay_cpu must be auto, none or a CPU number, not {setting!r}")
    cpu = int(value)
    if cpu not in allowed:
        names = ", ".join(str(c) for c in sorted(allowed))
        raise ConfigError(f"relay_cpu {cpu} is not one this process may use ({names})")
    return cpu


def pin_relay_threads(setting: str) -> frozenset[int] | None:
    """Keep every thread of this process, and the threads they start, on the CPU `setting`
    names; returns the CPUs the gate workers should use (None: leave them as they are)."""
    allowed = allowed_cpus()
    cpu = chosen_cpu(setting, allowed)
    if cpu is None:
        return None
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except ProcessLookupError:
            continue  # a thread that ended meanwhile
    log.info("relay threads share one CPU", extra={"cpu": cpu, "gate_cpus": sorted(allowed or ())})
    return allowed


def spread_over(cpus: frozenset[int] | None) -> None:
    """Let this process (a gate worker started by pinned threads) use `cpus` again."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
