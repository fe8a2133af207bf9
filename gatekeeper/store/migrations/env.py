"""Alembic environment: the engine comes from the caller (`gatekeeper db upgrade`), no ini file."""

from __future__ import annotations

from alembic import context

from gatekeeper.register import models as register_models  # noqa: F401 (on Base too)
from gatekeeper.store import approval  # noqa: F401 (its tables are on Base too)
from gatekeeper.store.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        compare_type=True,
    )
    context.run_migrations()
