"""Encrypted quarantine: sealed subjects, key ids for queued messages, the generated keyring.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21

Rows already in the store stay as they are (a NULL key id means plaintext) and
are read as before; `gatekeeper keys reseal` seals them, since a migration
never holds the keys.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTERs, never a batch copy: `items` is referenced by cascading foreign keys.
    op.add_column("items", sa.Column("sealed_subject", sa.LargeBinary(), nullable=True))
    op.add_column("items", sa.Column("subject_key_id", sa.String(length=64), nullable=True))
    op.add_column("outbound_messages", sa.Column("key_id", sa.String(length=64), nullable=True))
    op.create_table(
        "generated_keyring",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_generated_keyring_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generated_keyring")),
    )


def downgrade() -> None:
    op.drop_table("generated_keyring")
    op.drop_column("outbound_messages", "key_id")
    op.drop_column("items", "subject_key_id")
    op.drop_column("items", "sealed_subject")
