"""The store's correspondence tables: items checked, their bytes, human decisions, the queue.

`items` holds one row per item accepted for checking (an email the relay took,
later a letter), with the gate's decision and where the item stands. Its raw
bytes live in `item_contents`, apart, so retention can purge content while the
metadata and the audit trail stay. `outbound_messages` is the durable delivery
queue shared by every relay node: rows are claimed with a lease, never held in
a node's memory, so a node that dies loses nothing.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gatekeeper.store.models import Base, utcnow


class ItemState(StrEnum):
    """Where an item stands. `received` lasts only while the gate runs."""

    RECEIVED = "received"
    # The gate could not decide (error or time limit); the client was told 451 and keeps it.
    DEFERRED = "deferred"
    RELEASED = "released"
    HELD = "held"
    APPROVED = "approved"
    CORRECTED = "corrected"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    BLOCKED = "blocked"
    # Letters only (a later issue):
    PRINTED = "printed"
    DISPATCHED = "dispatched"


class DecisionAction(StrEnum):
    APPROVE = "approve"
    RETURN = "return"
    CORRECT = "correct"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"


class OutboundKind(StrEnum):
    ITEM = "item"  # an item's own bytes, from item_contents, with trace headers
    NOTICE = "notice"  # a notice to a sender (held, blocked, returned)
    DSN = "dsn"  # a delivery status notification


class OutboundState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    sender: Mapped[str | None] = mapped_column(String(254))
    team: Mapped[str | None] = mapped_column(String(100))
    # Plaintext only in rows from before encryption; the subject is sealed (`store/sealed.py`).
    subject: Mapped[str] = mapped_column(Text, default="")
    sealed_subject: Mapped[bytes | None] = mapped_column(LargeBinary)
    subject_key_id: Mapped[str | None] = mapped_column(String(64))
    envelope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    case_ids: Mapped[list[str]] = mapped_column(default=list)
    data_subjects: Mapped[list[str]] = mapped_column(default=list)
    verdict: Mapped[str | None] = mapped_column(String(8))
    enforced_verdict: Mapped[str | None] = mapped_column(String(8))
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default=ItemState.RECEIVED.value)
    monitor_only: Mapped[bool] = mapped_column(Boolean, default=False)
    message_id: Mapped[str | None] = mapped_column(String(998))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    node: Mapped[str | None] = mapped_column(String(100))


Index("ix_items_state_received_at", Item.state, Item.received_at)


class ItemContent(Base):
    """An item's original bytes, exactly as received, sealed under `key_id` (`store/sealed.py`)."""

    __tablename__ = "item_contents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(String(64))  # None: plaintext, not sealed yet


class HumanDecision(Base):
    """A person's one decision on a held item; the unique item_id makes the first click win."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(254))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
    confirmed_findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    corrected_recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    seconds_open: Mapped[float | None] = mapped_column()


class OutboundMessage(Base):
    """One (message, recipient) waiting for, or done with, delivery to the upstream MTA."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    mail_from: Mapped[str] = mapped_column(String(254))  # "" is the null sender <>
    recipient: Mapped[str] = mapped_column(String(254))
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # a notice's, sealed under key_id
    key_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=OutboundState.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(140))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


Index(
    "ix_outbound_messages_state_next_attempt_at",
    OutboundMessage.state,
    OutboundMessage.next_attempt_at,
)


class AuditEvent(Base):
    """Something that happened, appended to a hash chain and never changed (`gatekeeper.audit`).

    The hash covers `item_id` too: items are never deleted (retention purges only
    their content), so a deleted item's events, emptied by SET NULL, show as altered.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), index=True
    )
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    remote: Mapped[str | None] = mapped_column(String(100))


class AuditChainHead(Base):
    """The audit chain's last link, one row: writers lock it to append one at a time."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class StaffSendAs(Base):
    """An address other than their own that a member of staff may send as (a team mailbox)."""

    __tablename__ = "staff_send_as"

    user_pk: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    address_key: Mapped[str] = mapped_column(String(254), primary_key=True)
    address: Mapped[str] = mapped_column(String(254))
