"""Letters: the print job behind each letter, and the postal room's scans and alarms.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("addressee", sa.Text(), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=True),
        sa.Column("print_server", sa.String(length=255), nullable=True),
        sa.Column("print_queue", sa.String(length=127), nullable=True),
        sa.Column("print_job", sa.Integer(), nullable=True),
        sa.Column("job_user", sa.String(length=254), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("print_count", sa.Integer(), nullable=False),
        sa.Column("printed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_action", sa.String(length=16), nullable=True),
        sa.Column("job_action_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_by", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_letters_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters")),
        sa.UniqueConstraint("item_id", name=op.f("uq_letters_item_id")),
    )
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.create_index("ix_letters_print_job", ["print_job"], unique=False)

    op.create_table(
        "scan_envelopes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=254), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["letters.id"],
            name=op.f("fk_scan_envelopes_letter_id_letters"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_envelopes")),
    )
    op.create_table(
        "scanned_pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("envelope_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=True),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["envelope_id"],
            ["scan_envelopes.id"],
            name=op.f("fk_scanned_pages_envelope_id_scan_envelopes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["letters.id"],
            name=op.f("fk_scanned_pages_letter_id_letters"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scanned_pages")),
    )
    with op.batch_alter_table("scanned_pages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scanned_pages_envelope_id"), ["envelope_id"], unique=False
        )

    op.create_table(
        "scan_alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(length=254), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("envelope_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("other_item_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["envelope_id"],
            ["scan_envelopes.id"],
            name=op.f("fk_scan_alarms_envelope_id_scan_envelopes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_scan_alarms_item_id_items"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["other_item_id"],
            ["items.id"],
            name=op.f("fk_scan_alarms_other_item_id_items"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_alarms")),
    )
    with op.batch_alter_table("scan_alarms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scan_alarms_envelope_id"), ["envelope_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("scan_alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_alarms_envelope_id"))
    op.drop_table("scan_alarms")
    with op.batch_alter_table("scanned_pages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scanned_pages_envelope_id"))
    op.drop_table("scanned_pages")
    op.drop_table("scan_envelopes")
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_index("ix_letters_print_job")
    op.drop_table("letters")
