"""Opening the store: one engine per process, migrated, or one clear line saying why not."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


class StoreUnavailable(Exception):
    """The database cannot be opened; the message is one line saying why and what to do."""


class StoreOutdated(StoreUnavailable):
    """The database holds an older schema than this program; `gatekeeper db upgrade` fixes it."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the relay write while the web pages read; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _describe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def create_store_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; a SQLite file's folder is created on first use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(
            f"cannot use database URL {url!r}: expected e.g. sqlite:///path/to/file.db "
            "or postgresql+psycopg://user@host:5432/dbname"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship with
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 5)
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise StoreUnavailable(f"cannot use database {_describe(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("gatekeeper.store") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    """The newest schema this program knows (several branch heads joined by '+')."""
    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    return "+".join(sorted(heads)) or None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return "+".join(sorted(heads)) or None


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Migrate to the newest schema; returns (revision before, revision after)."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "heads")
    return before, current_revision(engine)


def _check_reachable(engine: Engine, url: str) -> None:
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreUnavailable(
            f"cannot reach database {_describe(url)}: {reason} "
            "(check --db / GATEKEEPER_DATABASE_URL and that the server is running)"
        ) from None


def open_store(url: str, *, migrate_empty: bool = True, **kwargs: Any) -> Engine:
    """Engine for `url`, reachable and on the newest schema.

    An empty database is migrated on first use; one on an older schema is
    refused with the command that fixes it, since upgrading a shared
    production database should be somebody's decision.
    """
    engine = create_store_engine(url, **kwargs)
    _check_reachable(engine, url)
    if not migrate_empty:
        return engine
    head = head_revision(engine)
    current = current_revision(engine)
    if current == head:
        return engine
    if current is None and not _has_tables(engine):
        upgrade(engine)
        return engine
    raise StoreOutdated(
        f"database {_describe(url)} is at schema {current or 'unknown'}, "
        f"this program needs {head}: "
        "run `gatekeeper db upgrade`"
    )


def _has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
