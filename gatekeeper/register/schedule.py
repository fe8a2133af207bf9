"""One round of the register's background work: sync it, and once a day purge old content.

The web app runs a round every `register_sync_seconds`. Syncing is safe on
every node at once; retention runs on the one node that wins the day's round
(`sweep.claim_round`, a conditional UPDATE in the store), so several web nodes
purge once a day between them, not once each.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from gatekeeper.register.filling import SyncReport, sync_store
from gatekeeper.register.retention import RetentionReport, purge

log = logging.getLogger(__name__)

RETENTION_TASK = "retention"
RETENTION_SPACING = dt.timedelta(days=1)


@dataclass(frozen=True)
class RoundReport:
    synced: SyncReport
    retention: RetentionReport | None  # None: another node (or an earlier round) ran it today


def register_round(
    engine: Engine, *, node: str, content_days: float, now: dt.datetime
) -> RoundReport:
    from gatekeeper.sweep import claim_round

    synced = sync_store(engine)
    if content_days <= 0 or not claim_round(engine, RETENTION_TASK, node, RETENTION_SPACING, now):
        return RoundReport(synced, None)
    report = purge(engine, content_days, now=now)
    log.info(report.summary())
    return RoundReport(synced, report)
