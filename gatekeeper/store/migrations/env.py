"""Alembic environment: the engine comes from the caller (`gatekeeper db upgrade`), no ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gatekeeper.register import models as register_models  # noqa: F401 (on Base too)
from gatekeeper.store import approval, keyrings  # noqa: F401 (their tables are on Base too)
from gatekeeper.store.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # Nodes that start together each migrate (`db upgrade` before every service): one
        # at a time, so the later ones find the schema current instead of failing on it.
        lock = "SELECT pg_advisory_xact_lock(hashtext('gatekeeper.migrate.' || current_schema()))"
        connection.execute(text(lock))
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        compare_type=True,
    )
    context.run_migrations()
