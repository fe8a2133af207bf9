"""Case record and staff: cases, aliases, parties, verified contacts, staff users and roles.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("record_hash", sa.String(length=32), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("case_id", name=op.f("uq_cases_case_id")),
    )
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email_key", name=op.f("uq_staff_users_email_key")),
    )
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.create_index("ix_staff_users_team", ["team"], unique=False)

    op.create_table(
        "case_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.case_id"],
            name=op.f("fk_case_aliases_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_aliases")),
    )
    with op.batch_alter_table("case_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_aliases_alias"), ["alias"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_aliases_case_id"), ["case_id"], unique=False)

    op.create_table(
        "parties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("other_names", sa.JSON(), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("organisation", sa.String(length=200), nullable=True),
        sa.Column("represents", sa.String(length=64), nullable=True),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("withheld_from", sa.JSON(), nullable=False),
        sa.Column("contact_allowed", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.case_id"],
            name=op.f("fk_parties_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parties")),
        sa.UniqueConstraint("party_id", name=op.f("uq_parties_party_id")),
    )
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_parties_case_id"), ["case_id"], unique=False)

    op.create_table(
        "staff_roles",
        sa.Column("user_pk", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_pk"],
            ["staff_users.id"],
            name=op.f("fk_staff_roles_user_pk_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_pk", "role", name=op.f("pk_staff_roles")),
    )
    op.create_table(
        "party_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("address_key", sa.String(length=254), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.party_id"],
            name=op.f("fk_party_emails_party_id_parties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_emails")),
    )
    with op.batch_alter_table("party_emails", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_party_emails_address_key"), ["address_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_party_emails_party_id"), ["party_id"], unique=False)

    op.create_table(
        "party_postal_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("postcode", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.party_id"],
            name=op.f("fk_party_postal_addresses_party_id_parties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_postal_addresses")),
    )
    with op.batch_alter_table("party_postal_addresses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_party_postal_addresses_party_id"), ["party_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_party_postal_addresses_postcode"), ["postcode"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("party_postal_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_postal_addresses_postcode"))
        batch_op.drop_index(batch_op.f("ix_party_postal_addresses_party_id"))

    op.drop_table("party_postal_addresses")
    with op.batch_alter_table("party_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_emails_party_id"))
        batch_op.drop_index(batch_op.f("ix_party_emails_address_key"))

    op.drop_table("party_emails")
    op.drop_table("staff_roles")
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parties_case_id"))

    op.drop_table("parties")
    with op.batch_alter_table("case_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_aliases_case_id"))
        batch_op.drop_index(batch_op.f("ix_case_aliases_alias"))

    op.drop_table("case_aliases")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_users_team")

    op.drop_table("staff_users")
    op.drop_table("cases")
