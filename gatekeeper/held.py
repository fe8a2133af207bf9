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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gatekeeper import held_notices
from gatekeeper.config import Settings
from gatekeeper.contact import email_key
from gatekeeper.policy import ApprovalPolicy, load_policy
from gatekeeper.quarantine import Quarantine
from gatekeeper.review import correction_choices, first_view_at, flag_item, is_canary, score_canary
from gatekeeper.smtp.auth import StaffDirectory, StaffIdentity
from gatekeeper.smtp.notices import notice_writer
from gatekeeper.smtp.outbound import aware, enqueue, record_audit
from gatekeeper.store.approval import Canary, HeldFlag
from gatekeeper.store.correspondence import (
    DecisionAction,
    HumanDecision,
    Item,
    ItemState,
    OutboundKind,
)
from gatekeeper.store.models import utcnow
from gatekeeper.store.sealed import SUBJECT_COLUMNS, subject_of

ITEMS = cast(Table, Item.__table__)
DECISIONS = cast(Table, HumanDecision.__table__)
CANARIES = cast(Table, Canary.__table__)
# An item that was held is in one of these states until its content is purged.
_HELD_STATES = (
    ItemState.HELD,
    ItemState.APPROVED,
    ItemState.CORRECTED,
    ItemState.RETURNED,
    ItemState.WITHDRAWN,
    ItemState.EXPIRED,
)
CHECKER_ROLE = "checker"
# Who decides when nobody did: the actor of an expiry.
SYSTEM_ACTOR = "gatekeeper"


class DecisionRefused(Exception):
    """A second-check decision that may not be made; the message says why in one line."""


@dataclass(frozen=True)
class HeldItem:
    id: int
    ref: str
    state: str
    channel: str
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
    def from_row(cls, row: Any, quarantine: Quarantine) -> HeldItem:
        envelope = row.envelope or {}
        return cls(
            id=row.id,
            ref=row.ref,
            state=row.state,
            channel=row.channel,
            sender=row.sender or "",
            team=row.team,
            subject=subject_of(quarantine, row),
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
    ITEMS.c.channel,
    ITEMS.c.sender,
    ITEMS.c.team,
    *SUBJECT_COLUMNS,
    ITEMS.c.envelope,
    ITEMS.c.findings,
    ITEMS.c.case_ids,
    ITEMS.c.received_at,
    ITEMS.c.decided_at,
    ITEMS.c.size,
)


class HeldQueue:
    def __init__(
        self, engine: Engine, settings: Settings, approval: ApprovalPolicy | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.approval = approval or load_policy(settings.policy_file or None).approval
        self.directory = StaffDirectory(engine)
        self.notices = notice_writer(settings)
        self.lifetime = dt.timedelta(hours=settings.retry_lifetime_hours)
        self.quarantine = Quarantine.for_store(settings, engine)
        self.quarantine.prepare()

    def waiting(self) -> list[HeldItem]:
        """Items held for a second check, oldest first."""
        query = (
            select(*_COLUMNS)
            .where(ITEMS.c.state == ItemState.HELD.value)
            .order_by(ITEMS.c.received_at, ITEMS.c.id)
        )
        with self.engine.connect() as conn:
            return [HeldItem.from_row(r, self.quarantine) for r in conn.execute(query)]

    def get(self, ref: str) -> HeldItem | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_COLUMNS).where(ITEMS.c.ref == ref.upper())).first()
        return HeldItem.from_row(row, self.quarantine) if row else None

    def sent_by(self, sender: str, since: dt.datetime) -> list[HeldItem]:
        """A sender's own items that were held since `since`, newest first (never a canary)."""
        canary = exists().where(CANARIES.c.item_id == ITEMS.c.id)
        query = (
            select(*_COLUMNS)
            .where(
                func.lower(ITEMS.c.sender) == email_key(sender),
                ITEMS.c.state.in_([s.value for s in _HELD_STATES]),
                ITEMS.c.received_at >= since,
                ~canary,
            )
            .order_by(ITEMS.c.received_at.desc(), ITEMS.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [HeldItem.from_row(r, self.quarantine) for r in conn.execute(query)]

    def approve(
        self,
        ref: str,
        checker: str,
        note: str = "",
        *,
        confirmed: Collection[int] | None = None,
        remote: str | None = None,
    ) -> HeldItem:
        """Release a held item: it is queued to leave byte for byte as the sender wrote it.

        `confirmed` are the indexes of the findings the checker ticked; each must be
        (None: the command line, which shows them all). `remote` is for the audit trail.
        """

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
            confirmed=confirmed,
            remote=remote,
        )

    def return_to_sender(
        self,
        ref: str,
        checker: str,
        note: str = "",
        *,
        confirmed: Collection[int] | None = None,
        remote: str | None = None,
    ) -> HeldItem:
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
            self._notify_sender(conn, item, notice)

        return self._decide(
            ref,
            checker,
            action=DecisionAction.RETURN,
            new_state=ItemState.RETURNED,
            note=note,
            then=tell_sender,
            confirmed=confirmed,
            remote=remote,
        )

    def correct(
        self,
        ref: str,
        checker: str,
        replacements: Mapping[str, str],
        note: str = "",
        *,
        confirmed: Collection[int] | None = None,
        remote: str | None = None,
    ) -> HeldItem:
        """Release a held item to the record's address instead of a wrong one.

        Only the envelope changes: each replaced recipient gets the verified address the
        record offers for it (`correction_choices`); the bytes leave as written, and the
        sender is told where it went.
        """
        who, item = self._checker_may_decide(ref, checker)
        if item.channel == "post":  # its address is printed on it: only a reprint corrects it
            raise DecisionRefused(f"{item.ref} is a letter: return it, to be reprinted correctly")
        changes = self._corrections(item, replacements)
        mapping = dict(changes)
        # A correction to an address already among the recipients does not send it twice.
        to = list({email_key(a): a for a in (mapping.get(r, r) for r in item.recipients)}.values())

        def release_corrected(conn: Connection, item: HeldItem, who: StaffIdentity) -> None:
            enqueue(
                conn,
                kind=OutboundKind.ITEM,
                mail_from=item.mail_from,
                recipients=to,
                lifetime=self.lifetime,
                item_id=item.id,
            )
            notice = held_notices.corrected(
                sender_address=self.notices.from_address,
                to=item.sender,
                ref=item.ref,
                subject=item.subject,
                changes=changes,
                checker=who.name,
                note=note,
            )
            self._notify_sender(conn, item, notice)

        return self._decide(
            ref,
            checker,
            action=DecisionAction.CORRECT,
            new_state=ItemState.CORRECTED,
            note=note,
            then=release_corrected,
            confirmed=confirmed,
            remote=remote,
            corrected=[{"from": old, "to": new} for old, new in changes],
            checked=(who, item),
        )

    def withdraw(self, ref: str, sender: str, *, remote: str | None = None) -> HeldItem:
        """The sender takes back their own held item: it is not sent and needs no check."""
        who = self.directory.identity(sender)
        item = self.get(ref)
        if who is None or item is None or email_key(item.sender) != email_key(who.email):
            raise DecisionRefused(f"you have no item with ref {ref.upper()}")
        with self.engine.connect() as conn:
            if is_canary(conn, item.id):  # planted under someone's name: not theirs to withdraw
                raise DecisionRefused(f"you have no item with ref {ref.upper()}")
        return self._settle(
            item,
            who,
            action=DecisionAction.WITHDRAW,
            new_state=ItemState.WITHDRAWN,
            note="withdrawn by the sender",
            then=lambda conn, item, who: None,
            confirmed=[],
            remote=remote,
        )

    def expire(self, ref: str) -> HeldItem:
        """Return an item nobody decided on in time to its sender, unsent (the sweep does this)."""
        item = self.get(ref)
        if item is None:
            raise DecisionRefused(f"there is no item with ref {ref.upper()}")
        hours = self.approval.expire_after_hours

        def tell_sender(conn: Connection, item: HeldItem, _who: StaffIdentity | None) -> None:
            notice = held_notices.expired(
                sender_address=self.notices.from_address,
                to=item.sender,
                ref=item.ref,
                subject=item.subject,
                recipients=item.recipients,
                hours=hours,
            )
            self._notify_sender(conn, item, notice)

        return self._settle(
            item,
            None,
            action=DecisionAction.EXPIRE,
            new_state=ItemState.EXPIRED,
            note=f"no second check within {hours:g} hours",
            then=tell_sender,
            confirmed=[],
            remote=None,
        )

    def correction_choices(self, item: HeldItem) -> dict[str, list[str]]:
        """Each recipient a finding is about, with the record's addresses it may become."""
        return correction_choices(self.engine, item.recipients, item.findings)

    def _corrections(
        self, item: HeldItem, replacements: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        choices = self.correction_choices(item)
        changes = []
        for used, new in replacements.items():
            recipient = next((r for r in item.recipients if email_key(r) == email_key(used)), None)
            offered = choices.get(recipient or "", [])
            chosen = next((a for a in offered if email_key(a) == email_key(new)), None)
            if recipient is None or chosen is None:
                raise DecisionRefused(
                    f"{new} is not an address the record has for {used}: choose one it offers"
                )
            changes.append((recipient, chosen))
        if not changes:
            raise DecisionRefused("choose the record's address for the recipient to correct")
        return changes

    def _notify_sender(self, conn: Connection, item: HeldItem, notice: bytes) -> None:
        enqueue(
            conn,
            kind=OutboundKind.NOTICE,
            mail_from="",
            recipients=[item.sender],
            lifetime=self.lifetime,
            item_id=item.id,
            raw=notice,
            quarantine=self.quarantine,
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
        confirmed: Collection[int] | None = None,
        remote: str | None = None,
        corrected: Sequence[dict[str, str]] = (),
        checked: tuple[StaffIdentity, HeldItem] | None = None,
    ) -> HeldItem:
        who, item = checked or self._checker_may_decide(ref, checker)
        releases = action in (DecisionAction.APPROVE, DecisionAction.CORRECT)
        if confirmed is None:  # the command line shows every finding with the item
            ticked = list(range(len(item.findings)))
        else:
            ticked = sorted({i for i in confirmed if 0 <= i < len(item.findings)})
            if releases and len(ticked) < len(item.findings):
                raise DecisionRefused(
                    f"confirm each finding before releasing {item.ref}:"
                    f" {len(ticked)} of {len(item.findings)} confirmed"
                )
        return self._settle(
            item,
            who,
            action=action,
            new_state=new_state,
            note=note,
            then=then,
            confirmed=[str(item.findings[i].get("check")) for i in ticked],
            remote=remote,
            corrected=corrected,
        )

    def _checker_may_decide(self, ref: str, checker: str) -> tuple[StaffIdentity, HeldItem]:
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
        return who, item

    def _settle(
        self,
        item: HeldItem,
        who: StaffIdentity | None,
        *,
        action: DecisionAction,
        new_state: ItemState,
        note: str,
        then: Any,
        confirmed: list[str],
        remote: str | None,
        corrected: Sequence[dict[str, str]] = (),
    ) -> HeldItem:
        """Record the one decision on a held item and act on it, if nobody decided first."""
        actor = who.email if who else SYSTEM_ACTOR
        letter = item.channel == "post"  # a letter leaves by its CUPS print job, not by mail
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
                opened = first_view_at(conn, item.id, actor) if who else None
                seconds_open = (now - opened).total_seconds() if opened else None
                conn.execute(
                    insert(DECISIONS).values(
                        item_id=item.id,
                        action=action.value,
                        actor=actor,
                        at=now,
                        note=note,
                        confirmed_findings=confirmed,
                        corrected_recipients=list(corrected),
                        seconds_open=seconds_open,
                    )
                )
                if is_canary(conn, item.id):  # a canary never leaves, whatever is decided
                    score_canary(conn, item.id, action.value, who.email if who else None)
                elif not letter:
                    then(conn, item, who)
                minimum = self.approval.min_review_seconds
                releases = action in (DecisionAction.APPROVE, DecisionAction.CORRECT)
                if releases and (seconds_open is None or seconds_open < minimum):
                    flag_item(
                        conn,
                        item.id,
                        HeldFlag.FAST_DECISION,
                        {"actor": actor, "seconds_open": seconds_open, "minimum": minimum},
                    )
                record_audit(
                    conn,
                    f"held.{action.value}",
                    actor=actor,
                    item_id=item.id,
                    remote=remote,
                    details={
                        "ref": item.ref,
                        "note": note,
                        "confirmed": confirmed,
                        "seconds_open": seconds_open,
                        "corrected": list(corrected),
                    },
                )
        except (_Lost, IntegrityError):
            raise DecisionRefused(self._why_not_held(item)) from None
        decided = self.get(item.ref)
        assert decided is not None
        if letter:  # release or cancel its print job in CUPS now that it is decided
            from gatekeeper.post.jobs import act_on_decided_letter

            act_on_decided_letter(self.engine, self.settings, item.id)
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
