"""Correspondence: items and their bytes, human decisions, the outbound queue, audit, send-as.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("sender", sa.String(length=254), nullable=True),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("case_ids", sa.JSON(), nullable=False),
        sa.Column("data_subjects", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=True),
        sa.Column("enforced_verdict", sa.String(length=8), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("monitor_only", sa.Boolean(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("node", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("ref", name=op.f("uq_items_ref")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index("ix_items_state_received_at", ["state", "received_at"], unique=False)

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("remote", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_audit_events_item_id_items"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_item_id"), ["item_id"], unique=False)

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("confirmed_findings", sa.JSON(), nullable=False),
        sa.Column("corrected_recipients", sa.JSON(), nullable=False),
        sa.Column("seconds_open", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_decisions_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("item_id", name=op.f("uq_decisions_item_id")),
    )
    op.create_table(
        "item_contents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_item_contents_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_contents")),
        sa.UniqueConstraint("item_id", name=op.f("uq_item_contents_item_id")),
    )
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("mail_from", sa.String(length=254), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=140), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_outbound_messages_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
    )
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbound_messages_item_id"), ["item_id"], unique=False)
        batch_op.create_index(
            "ix_outbound_messages_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "staff_send_as",
        sa.Column("user_pk", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=254), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_pk"],
            ["staff_users.id"],
            name=op.f("fk_staff_send_as_user_pk_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_pk", "address_key", name=op.f("pk_staff_send_as")),
    )


def downgrade() -> None:
    op.drop_table("staff_send_as")
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_messages_state_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_outbound_messages_item_id"))

    op.drop_table("outbound_messages")
    op.drop_table("item_contents")
    op.drop_table("decisions")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_item_id"))

    op.drop_table("audit_events")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_state_received_at")

    op.drop_table("items")
