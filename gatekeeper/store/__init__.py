"""The store: SQLAlchemy models, sessions and Alembic migrations."""

from gatekeeper.store.database import (
    StoreOutdated,
    StoreUnavailable,
    create_store_engine,
    open_store,
    session_scope,
    upgrade,
)

__all__ = [
    "StoreOutdated",
    "StoreUnavailable",
    "create_store_engine",
    "open_store",
    "session_scope",
    "upgrade",
]
