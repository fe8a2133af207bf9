"""Retention: an item's content is kept only as long as the policy says; its metadata stays.

`purge` deletes the raw bytes (`item_contents`) of items decided more than
`retention.content_days` ago: released, blocked, and every held item once a
person (or the expiry) decided it. The `items` row (ref, sender, findings,
state), the decision, the audit trail and the register entry all stay. The
register is synced first, so every near miss has captured what it needs from
the content before the content goes. Never purged: an item still held or being
checked, a letter not yet dispatched, and an item whose delivery is still
queued (the queue sends the stored bytes). Each purge is an audit event.

Run daily: by the web app's background loop (one node a day wins the round),
or by cron with `gatekeeper retention run`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Engine, Table, and_, delete, exists, func, select

from gatekeeper.register.filling import sync_store
from gatekeeper.smtp.outbound import aware, record_audit
from gatekeeper.store.correspondence import (
    HumanDecision,
    Item,
    ItemContent,
    ItemState,
    OutboundKind,
    OutboundMessage,
    OutboundState,
)
from gatekeeper.store.models import utcnow

log = logging.getLogger(__name__)

ITEMS = cast(Table, Item.__table__)
CONTENTS = cast(Table, ItemContent.__table__)
DECISIONS = cast(Table, HumanDecision.__table__)
OUTBOUND = cast(Table, OutboundMessage.__table__)

# States in which an item's content is still needed: being checked, or waiting for a person.
IN_PROGRESS = frozenset({ItemState.RECEIVED.value, ItemState.HELD.value})
# A letter that may still print is on its way until the postal room dispatches it.
LETTER_ON_ITS_WAY = frozenset(
    {
        ItemState.RELEASED.value,
        ItemState.APPROVED.value,
        ItemState.CORRECTED.value,
        ItemState.PRINTED.value,
    }
)
_UNSENT = (OutboundState.QUEUED.value, OutboundState.SENDING.value)
PURGE_ACTION = "retention.purged"
# Items purged per transaction: a long first run never holds the write lock for long.
PURGE_BATCH = 500


@dataclass
class RetentionReport:
    cutoff: dt.datetime | None
    purged: list[str] = field(default_factory=list)  # refs
    bytes: int = 0

    def summary(self) -> str:
        if self.cutoff is None:
            return "retention: content is kept indefinitely (retention.content_days is 0)"
        when = self.cutoff.strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"retention: purged the content of {len(self.purged)} items decided before {when}"
            f" ({self.bytes} bytes); their metadata and register entries are kept"
        )


def purge(
    engine: Engine,
    content_days: float,
    *,
    now: dt.datetime | None = None,
    actor: str = "gatekeeper",
    dry_run: bool = False,
) -> RetentionReport:
    """Purge the content of items decided more than `content_days` ago; 0 keeps everything."""
    if content_days <= 0:
        return RetentionReport(cutoff=None)
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=content_days)
    report = RetentionReport(cutoff=cutoff)
    if not dry_run:
        sync_store(engine)  # every near miss captures its kinds of data from the content first
    decided_at = func.coalesce(
        select(DECISIONS.c.at).where(DECISIONS.c.item_id == ITEMS.c.id).scalar_subquery(),
        ITEMS.c.decided_at,
        ITEMS.c.received_at,
    )
    unsent = exists().where(
        OUTBOUND.c.item_id == ITEMS.c.id,
        OUTBOUND.c.kind == OutboundKind.ITEM.value,
        OUTBOUND.c.state.in_(_UNSENT),
    )
    query = (
        select(
            ITEMS.c.id,
            ITEMS.c.ref,
            decided_at.label("decided_at"),
            func.length(CONTENTS.c.raw).label("size"),
        )
        .join(CONTENTS, CONTENTS.c.item_id == ITEMS.c.id)
        .where(
            ITEMS.c.state.not_in(IN_PROGRESS),
            ~and_(ITEMS.c.channel == "post", ITEMS.c.state.in_(LETTER_ON_ITS_WAY)),
            decided_at < cutoff,
            ~unsent,
        )
        .order_by(ITEMS.c.id)
    )
    if dry_run:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        report.purged = [r.ref for r in rows]
        report.bytes = sum(r.size or 0 for r in rows)
        return report
    while True:
        with engine.begin() as conn:
            rows = conn.execute(query.limit(PURGE_BATCH)).all()
            for row in rows:
                conn.execute(delete(CONTENTS).where(CONTENTS.c.item_id == row.id))
                record_audit(
                    conn,
                    PURGE_ACTION,
                    actor=actor,
                    item_id=row.id,
                    details={
                        "ref": row.ref,
                        "bytes": row.size or 0,
                        "decided_at": aware(row.decided_at).isoformat(),
                        "content_days": content_days,
                    },
                )
                report.purged.append(row.ref)
                report.bytes += row.size or 0
        if len(rows) < PURGE_BATCH:
            break
    if report.purged:
        log.info("retention", extra={"purged": len(report.purged), "bytes": report.bytes})
    return report
