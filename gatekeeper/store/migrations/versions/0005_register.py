"""The near-miss and breach register: entries and their append-only versions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21

Triggers make the history tamper-evident in the database itself, whatever
program connects: versions are never updated or deleted, entries never deleted.
(A later SQLite batch migration that copies `register_entries` or
`register_versions` must create these triggers again.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_REFUSAL = "the register keeps every version: entries are amended, never deleted"

_SQLITE_TRIGGERS = (
    ("register_versions_no_update", "BEFORE UPDATE ON register_versions"),
    ("register_versions_no_delete", "BEFORE DELETE ON register_versions"),
    ("register_entries_no_delete", "BEFORE DELETE ON register_entries"),
)


def upgrade() -> None:
    op.create_table(
        "register_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("item_ref", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=4), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("sender", sa.String(length=254), nullable=True),
        sa.Column("decided_by", sa.String(length=254), nullable=True),
        sa.Column("case_ids", sa.JSON(), nullable=False),
        sa.Column("data_subjects", sa.JSON(), nullable=False),
        sa.Column("people_affected", sa.Integer(), nullable=False),
        sa.Column("data_kinds", sa.JSON(), nullable=False),
        sa.Column("special_categories", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("consequences", sa.Text(), nullable=False),
        sa.Column("mitigation", sa.Text(), nullable=False),
        sa.Column("reporter", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reportable", sa.Boolean(), nullable=False),
        sa.Column("reported", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("regulator_ref", sa.String(length=100), nullable=False),
        sa.Column("report_reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=254), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_register_entries_item_id_items"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_entries")),
        sa.UniqueConstraint(
            "source_kind", "source_id", name=op.f("uq_register_entries_source_kind_source_id")
        ),
    )
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        batch_op.create_index("ix_register_entries_discovered_at", ["discovered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_register_entries_item_id"), ["item_id"], unique=False)

    op.create_table(
        "register_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("changed", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["register_entries.id"],
            name=op.f("fk_register_versions_entry_id_register_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_versions")),
        sa.UniqueConstraint(
            "entry_id", "version", name=op.f("uq_register_versions_entry_id_version")
        ),
    )
    _create_triggers()


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION register_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{_REFUSAL}'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER register_versions_append_only BEFORE UPDATE OR DELETE "
            "ON register_versions FOR EACH ROW EXECUTE FUNCTION register_append_only()"
        )
        op.execute(
            "CREATE TRIGGER register_entries_no_delete BEFORE DELETE "
            "ON register_entries FOR EACH ROW EXECUTE FUNCTION register_append_only()"
        )
        return
    for name, when in _SQLITE_TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END")


def downgrade() -> None:
    op.drop_table("register_versions")
    op.drop_table("register_entries")  # its indexes and triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION register_append_only()")
