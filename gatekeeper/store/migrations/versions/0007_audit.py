"""Tamper-evident audit: events chained by hash, and the chain's one-row head.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21

Events already in the store are chained once, here, in the order they were
written (by id), so an old database verifies. Their hashes are computed from
the columns as the store gives them back, as `gatekeeper audit verify` does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gatekeeper.audit.chain import GENESIS, event_hash

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 1000

_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("item_id", sa.Integer()),
    sa.column("details", sa.JSON()),
    sa.column("remote", sa.String()),
)
_head = sa.table(
    "audit_chain_head",
    sa.column("id", sa.Integer()),
    sa.column("seq", sa.BigInteger()),
    sa.column("hash", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    seq, last_hash = _chain_existing_events(op.get_bind())
    op.bulk_insert(_head, [{"id": 1, "seq": seq, "hash": last_hash}])
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_seq"), ["seq"])


def _chain_existing_events(conn: sa.Connection) -> tuple[int, str]:
    """Number and link the events written before the chain existed; (last seq, last hash)."""
    seq, last_hash, after = 0, GENESIS, None
    link = (
        sa.update(_events)
        .where(_events.c.id == sa.bindparam("event_id"))
        .values(seq=sa.bindparam("new_seq"), prev_hash=sa.bindparam("new_prev"),
                hash=sa.bindparam("new_hash"))
    )  # fmt: skip
    while True:
        query = sa.select(_events).order_by(_events.c.id).limit(BATCH)
        if after is not None:
            query = query.where(_events.c.id > after)
        rows = conn.execute(query).all()
        if not rows:
            return seq, last_hash
        links = []
        for row in rows:
            seq += 1
            digest = event_hash(
                last_hash,
                seq=seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                item_id=row.item_id,
                details=row.details,
                remote=row.remote,
            )
            links.append(
                {"event_id": row.id, "new_seq": seq, "new_prev": last_hash, "new_hash": digest}
            )
            last_hash = digest
        conn.execute(link, links)
        after = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    op.drop_table("audit_chain_head")
