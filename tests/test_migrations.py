"""The schema: migrations create it on SQLite and PostgreSQL, and agree with the models."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from gatekeeper.store import create_store_engine, open_store, upgrade
from gatekeeper.store.database import StoreOutdated, alembic_config, head_revision
from gatekeeper.store.models import Base


def test_an_empty_database_is_migrated_on_first_use(database_url: str) -> None:
    engine = open_store(database_url)
    tables = set(inspect(engine).get_table_names())
    assert {"cases", "case_aliases", "parties", "party_emails", "party_postal_addresses",
            "staff_users", "staff_roles", "alembic_version"} <= tables  # fmt: skip


def test_the_migrations_produce_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_downgrade_to_nothing_and_up_again(engine: Engine) -> None:
    cfg = alembic_config(engine)
    command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    before, after = upgrade(engine)
    assert (before, after) == (None, head_revision(engine))


def test_a_database_on_an_older_schema_is_refused_with_the_fix(database_url: str) -> None:
    engine = create_store_engine(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        # One row per head while parallel schema branches await their merge revision.
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('older')"))
    with pytest.raises(StoreOutdated, match="run `gatekeeper db upgrade`"):
        open_store(database_url)
