"""What every command shares: settings, and the store opened once on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import click
from sqlalchemy import Engine

from gatekeeper.casebook import CaseIndex
from gatekeeper.config import Settings
from gatekeeper.quarantine import Quarantine
from gatekeeper.store import open_store

# Exit status when a command cannot run at all (store or configuration unusable).
EXIT_UNUSABLE = 3


@dataclass
class AppContext:
    settings: Settings
    _index: CaseIndex | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        """The store, migrated if it is new; raises `StoreUnavailable` with one line why not."""
        engine = open_store(self.settings.effective_database_url)
        Quarantine.for_store(self.settings, engine)  # what code given only the store opens with
        return engine

    def case_index(self) -> CaseIndex:
        if self._index is None:
            self._index = CaseIndex.from_store(self.engine)
        return self._index


pass_app = click.make_pass_decorator(AppContext)
