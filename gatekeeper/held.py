"""Held items and the second check: the rules the command line and the web pages share.

The server enforces them, whatever asks: only an active member of staff with
the checker role decides; never the item's own sender ("fresh eyes" means
another person); and exactly one decision per item. Two checkers who click at
once race on a conditional UPDATE of the item's state, backed by the unique
`decisions.item_id`: one wins, the other is told who decided first.
An approved item is queued to leave exactly as written; a returned item gets
its sender a notice with the checker's note.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from gatekeeper.config import Settings
from gatekeeper.contact import email_key
from gatekeeper.smtp.auth import StaffDirectory, StaffIdentity
from gatekeeper.smtp.notices import notice_writer
from gatekeeper.smtp.outbound import aware, enqueue, record_audit
from gatekeeper.store.correspondence import (
    DecisionAction,
    HumanDecision,
    Item,
    ItemState,
    OutboundKind,
)
from gatekeeper.store.models import utcnow

ITEMS = cast(Table, Item.__table__)
DECISIONS = cast(Table, HumanDecision.__table__)
CHECKER_ROLE = "checker"


class DecisionRefused(Exception):
    """A second-check decision that may not be made; the message says why in one line."""


@dataclass(frozen=True)
class HeldItem:
    id: int
    ref: str
    state: str
    sender: str
    team: str | None
    subject: str
    mail_from: str
    recipients: tuple[str, ...]  # the envelope's, as the sender addressed it
    findings: tuple[dict[str, Any], ...]
    case_ids: tuple[str, ...]
    received_at: dt.datetime
    held_at: dt.datetime | None
    size: int

    @classmethod
    def from_row(cls, row: Any) -> HeldItem:
        envelope = row.envelope or {}
        return cls(
            id=row.id,
            ref=row.ref,
            state=row.state,
            sender=row.sender or "",
            team=row.team,
            subject=row.subject or "",
            mail_from=envelope.get("mail_from", row.sender or ""),
            recipients=tuple(envelope.get("rcpt_to", [])),
            findings=tuple(row.findings or []),
            case_ids=tuple(row.case_ids or []),
            received_at=aware(row.received_at),
            held_at=aware(row.decided_at) if row.decided_at else None,
            size=row.size,
        )


_COLUMNS = (
    ITEMS.c.id,
    ITEMS.c.ref,
    ITEMS.c.state,
    ITEMS.c.sender,
    ITEMS.c.team,
    ITEMS.c.subject,
    ITEMS.c.envelope,
    ITEMS.c.findings,
    ITEMS.c.case_ids,
    ITEMS.c.received_at,
    ITEMS.c.decided_at,
    ITEMS.c.size,
)


class HeldQueue:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.directory = StaffDirectory(engine)
        self.notices = notice_writer(settings)
        self.lifetime = dt.timedelta(hours=settings.retry_lifetime_hours)

    def waiting(self) -> list[HeldItem]:
        """Items held for a second check, oldest first."""
        query = (
            select(*_COLUMNS)
            .where(ITEMS.c.state == ItemState.HELD.value)
            .order_by(ITEMS.c.received_at, ITEMS.c.id)
        )
        with self.engine.connect() as conn:
            return [HeldItem.from_row(r) for r in conn.execute(query)]

    def get(self, ref: str) -> HeldItem | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_COLUMNS).where(ITEMS.c.ref == ref.upper())).first()
        return HeldItem.from_row(row) if row else None

    def approve(self, ref: str, checker: str, note: str = "") -> HeldItem:
        """Release a held item: it is queued to leave byte for byte as the sender wrote it."""

        def release(conn: Connection, item: HeldItem, _who: StaffIdentity) -> None:
            enqueue(
                conn,
                kind=OutboundKind.ITEM,
                mail_from=item.mail_from,
                recipients=item.recipients,
                lifetime=self.lifetime,
                item_id=item.id,
            )

        return self._decide(
            ref,
            checker,
            action=DecisionAction.APPROVE,
            new_state=ItemState.APPROVED,
            note=note,
            then=release,
        )

    def return_to_sender(self, ref: str, checker: str, note: str = "") -> HeldItem:
        """Do not send a held item; its sender gets a notice with the checker's note."""

        def tell_sender(conn: Connection, item: HeldItem, who: StaffIdentity) -> None:
            notice = self.notices.returned(
                to=item.sender,
                ref=item.ref,
                subject=item.subject,
                recipients=item.recipients,
                findings=item.findings,
                checker=who.name,
                note=note,
            )
            enqueue(
                conn,
                kind=OutboundKind.NOTICE,
                mail_from="",
                recipients=[item.sender],
                lifetime=self.lifetime,
                item_id=item.id,
                raw=notice,
            )

        return self._decide(
            ref,
            checker,
            action=DecisionAction.RETURN,
            new_state=ItemState.RETURNED,
            note=note,
            then=tell_sender,
        )

    def _decide(
        self,
        ref: str,
        checker: str,
        *,
        action: DecisionAction,
        new_state: ItemState,
        note: str,
        then: Any,
    ) -> HeldItem:
        who = self.directory.identity(checker)
        if who is None:
            raise DecisionRefused(f"{checker} is not an active member of staff")
        item = self.get(ref)
        if item is None:
            raise DecisionRefused(f"there is no item with ref {ref.upper()}")
        if email_key(item.sender) == email_key(who.email):
            raise DecisionRefused(
                f"{who.email} sent {item.ref}: the second check must be someone else's"
            )
        if CHECKER_ROLE not in who.roles:
            raise DecisionRefused(f"{who.email} does not have the checker role")
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                # The state UPDATE comes first: it takes the write lock, and only one wins it.
                won = conn.execute(
                    update(ITEMS)
                    .where(ITEMS.c.id == item.id, ITEMS.c.state == ItemState.HELD.value)
                    .values(state=new_state.value)
                ).rowcount
                if won != 1:
                    raise _Lost
                conn.execute(
                    insert(DECISIONS).values(
                        item_id=item.id,
                        action=action.value,
                        actor=who.email,
                        at=now,
                        note=note,
                        confirmed_findings=[f.get("check") for f in item.findings],
                        corrected_recipients=[],
                        seconds_open=(now - item.held_at).total_seconds() if item.held_at else None,
                    )
                )
                then(conn, item, who)
                record_audit(
                    conn,
                    f"held.{action.value}",
                    actor=who.email,
                    item_id=item.id,
                    details={"ref": item.ref, "note": note},
                )
        except (_Lost, IntegrityError):
            raise DecisionRefused(self._why_not_held(item)) from None
        decided = self.get(item.ref)
        assert decided is not None
        return decided

    def _why_not_held(self, item: HeldItem) -> str:
        with self.engine.connect() as conn:
            state = conn.execute(select(ITEMS.c.state).where(ITEMS.c.id == item.id)).scalar_one()
            earlier = conn.execute(
                select(DECISIONS.c.action, DECISIONS.c.actor, DECISIONS.c.at).where(
                    DECISIONS.c.item_id == item.id
                )
            ).first()
        if earlier is not None:
            when = aware(earlier.at).strftime("%Y-%m-%d %H:%M UTC")
            return f"{item.ref} was already decided: {earlier.action} by {earlier.actor} at {when}"
        return f"{item.ref} is not held (it is {state})"


class _Lost(Exception):
    """Another decision changed the item's state first."""
