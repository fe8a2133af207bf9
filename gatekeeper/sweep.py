"""The held-item sweep: escalate what waits too long, expire what nobody decided, plant canaries.

Runs in every web process's background and as `gatekeeper held sweep` (for
cron). Several nodes may sweep at once: an escalation is recorded once (the
`held_flags` primary key), an expiry is a decision like any other (the first
wins), and canaries are planted by whichever node wins the round's
conditional UPDATE of `periodic_tasks`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Connection, Engine, Table, and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gatekeeper import held_notices
from gatekeeper.canaries import CanaryMaker
from gatekeeper.config import Settings
from gatekeeper.contact import email_key
from gatekeeper.held import DecisionRefused, HeldQueue
from gatekeeper.review import flag_item
from gatekeeper.smtp.notices import node_name
from gatekeeper.smtp.outbound import aware, enqueue, record_audit
from gatekeeper.store.approval import Canary, HeldFlag, HeldItemFlag, PeriodicTask
from gatekeeper.store.correspondence import Item, ItemState, OutboundKind
from gatekeeper.store.models import StaffRole, StaffUser, utcnow
from gatekeeper.store.sealed import SUBJECT_COLUMNS, subject_of

log = logging.getLogger(__name__)

ITEMS = cast(Table, Item.__table__)
FLAGS = cast(Table, HeldItemFlag.__table__)
CANARIES = cast(Table, Canary.__table__)
TASKS = cast(Table, PeriodicTask.__table__)

# Canary rates are measured over this window of held items.
CANARY_WINDOW = dt.timedelta(hours=24)
# At most this many canaries a round, so a quiet queue never fills with them at once.
CANARIES_PER_ROUND = 3
# Two nodes (or the web process and cron) never plant canaries closer together than this.
CANARY_SPACING = dt.timedelta(seconds=30)


@dataclass
class SweepReport:
    escalated: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    canaries: int = 0  # how many were planted (their refs are not reported: they are secret)

    def summary(self) -> str:
        return (
            f"escalated {len(self.escalated)}, expired {len(self.expired)},"
            f" canaries planted {self.canaries}"
        )


class HeldSweep:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        queue: HeldQueue | None = None,
        canaries: CanaryMaker | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.queue = queue or HeldQueue(engine, settings)
        self.canaries = canaries or CanaryMaker(engine, settings)
        self.node = node_name(settings)

    def run(self, now: dt.datetime | None = None) -> SweepReport:
        now = now or utcnow()
        report = SweepReport()
        report.expired = self.expire(now)
        report.escalated = self.escalate(now)
        report.canaries = self.plant_canaries(now)
        if report.expired or report.escalated or report.canaries:
            log.info("sweep", extra={"expired": report.expired, "escalated": report.escalated})
        return report

    def expire(self, now: dt.datetime) -> list[str]:
        hours = self.queue.approval.expire_after_hours
        if not hours:
            return []
        expired = []
        for ref in self._waiting_since(now - dt.timedelta(hours=hours)):
            try:
                self.queue.expire(ref)
            except DecisionRefused:
                continue  # decided (or expired by another node) since it was listed
            expired.append(ref)
        return expired

    def escalate(self, now: dt.datetime) -> list[str]:
        minutes = self.queue.approval.escalate_after_minutes
        if not minutes:
            return []
        already = exists().where(
            FLAGS.c.item_id == ITEMS.c.id, FLAGS.c.flag == HeldFlag.ESCALATED.value
        )
        query = (
            select(
                ITEMS.c.id,
                ITEMS.c.ref,
                ITEMS.c.sender,
                ITEMS.c.team,
                ITEMS.c.channel,
                *SUBJECT_COLUMNS,
                ITEMS.c.received_at,
            )
            .where(
                ITEMS.c.state == ItemState.HELD.value,
                ITEMS.c.received_at <= now - dt.timedelta(minutes=minutes),
                ~already,
            )
            .order_by(ITEMS.c.received_at)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        escalated = []
        for row in rows:
            waited = (now - aware(row.received_at)).total_seconds() / 60
            with self.engine.begin() as conn:
                if not flag_item(conn, row.id, HeldFlag.ESCALATED, {"minutes": round(waited)}):
                    continue
                told = self._tell_checkers(conn, row, waited)
                record_audit(
                    conn,
                    "held.escalated",
                    item_id=row.id,
                    details={"ref": row.ref, "minutes": round(waited), "told": told},
                )
            escalated.append(row.ref)
        return escalated

    def plant_canaries(self, now: dt.datetime) -> int:
        approval = self.queue.approval
        if approval.canary_rate <= 0 or not approval.canary_kinds:
            return 0
        if not self._due_canaries(now, approval.canary_rate):
            return 0
        if not claim_round(self.engine, "canaries", self.node, CANARY_SPACING, now):
            return 0
        planted = 0
        while planted < CANARIES_PER_ROUND and self._due_canaries(now, approval.canary_rate):
            if self.canaries.plant(approval.canary_kinds) is None:
                break
            planted += 1
        return planted

    def _due_canaries(self, now: dt.datetime, rate: float) -> bool:
        """Whether one more canary keeps canaries at most `rate` of the window's held items."""
        since = now - CANARY_WINDOW
        is_canary = exists().where(CANARIES.c.item_id == ITEMS.c.id)
        with self.engine.connect() as conn:
            real = conn.execute(
                select(func.count())
                .select_from(ITEMS)
                .where(ITEMS.c.verdict == "hold", ITEMS.c.received_at >= since, ~is_canary)
            ).scalar_one()
            planted = conn.execute(
                select(func.count()).select_from(CANARIES).where(CANARIES.c.created_at >= since)
            ).scalar_one()
        return bool(real) and planted + 1 <= rate * (real + planted + 1)

    def _waiting_since(self, cutoff: dt.datetime) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(ITEMS.c.ref)
                    .where(ITEMS.c.state == ItemState.HELD.value, ITEMS.c.received_at <= cutoff)
                    .order_by(ITEMS.c.received_at)
                ).scalars()
            )

    def _tell_checkers(self, conn: Connection, row: object, waited: float) -> list[str]:
        """Notices to the checkers of the sender's team (every checker when it has none)."""
        sender = str(getattr(row, "sender", "") or "")
        team = getattr(row, "team", None)
        checkers = _checkers(conn, team) or _checkers(conn, None)
        recipients = [c for c in checkers if email_key(c) != email_key(sender)]
        base = self.settings.web_public_url.rstrip("/")
        ref = str(getattr(row, "ref", ""))
        for recipient in recipients:
            notice = held_notices.escalated(
                sender_address=self.queue.notices.from_address,
                to=recipient,
                ref=ref,
                subject=subject_of(self.queue.quarantine, row),
                sender=sender,
                minutes=waited,
                link=f"{base}/items/{ref}" if base else "",
                letter=getattr(row, "channel", "") == "post",
            )
            enqueue(
                conn,
                kind=OutboundKind.NOTICE,
                mail_from="",
                recipients=[recipient],
                lifetime=self.queue.lifetime,
                item_id=getattr(row, "id", None),
                raw=notice,
                quarantine=self.queue.quarantine,
            )
        return recipients


def _checkers(conn: Connection, team: str | None) -> list[str]:
    query = (
        select(StaffUser.email)
        .join(StaffRole, and_(StaffRole.user_pk == StaffUser.id, StaffRole.role == "checker"))
        .where(StaffUser.active.is_(True))
        .order_by(StaffUser.email)
    )
    if team is not None:
        query = query.where(StaffUser.team == team)
    return list(conn.execute(query).scalars())


def claim_round(
    engine: Engine, name: str, node: str, spacing: dt.timedelta, now: dt.datetime
) -> bool:
    """Whether this node runs this round of task `name`: one node wins per `spacing`."""
    with engine.begin() as conn:
        try:
            with conn.begin_nested():
                conn.execute(insert(TASKS).values(name=name, last_run_at=None, node=None))
        except IntegrityError:
            pass  # the task's row exists already
        won = conn.execute(
            update(TASKS)
            .where(
                TASKS.c.name == name,
                or_(TASKS.c.last_run_at.is_(None), TASKS.c.last_run_at <= now - spacing),
            )
            .values(last_run_at=now, node=node)
        ).rowcount
    return bool(won == 1)
