"""Checks register themselves by name, with a description and their settings' defaults.

Built-in checks use the same registration a site's own check would: the
`check` decorator here, or an entry point in the `gatekeeper.checks` group
naming a module that uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from gatekeeper.decision import Finding

if TYPE_CHECKING:
    from gatekeeper.checks.context import CheckContext

CheckFunction = Callable[["CheckContext", Mapping[str, Any]], Iterable[Finding]]
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class CheckSpec:
    name: str
    description: str
    run: CheckFunction
    settings: Mapping[str, Any] = field(default_factory=dict)  # name -> default


_REGISTRY: dict[str, CheckSpec] = {}


def check(name: str, description: str, **settings: Any) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check: a pure function from the context and its settings to findings."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"check names are snake_case: {name!r}")

    def register(function: CheckFunction) -> CheckFunction:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.run is not function:
            raise ValueError(f"a check named {name!r} is already registered")
        _REGISTRY[name] = CheckSpec(name, description, function, dict(settings))
        return function

    return register


def registered_checks() -> dict[str, CheckSpec]:
    """Every check, built-in and site, in registration order."""
    _load()
    return dict(_REGISTRY)


@cache
def _load() -> None:
    """Import the built-in checks and every installed site check, once."""
    import gatekeeper.checks.builtin  # noqa: F401  (registers the built-in checks)

    for entry in entry_points(group="gatekeeper.checks"):
        entry.load()
