"""Fixtures that make real things: a SQLite file, a PostgreSQL schema, a loaded case record.

Store tests run twice, on SQLite and on PostgreSQL. PostgreSQL is the server
named by GATEKEEPER_TEST_POSTGRES_URL (CI sets it); each test gets a schema of
its own, dropped afterwards. Without the variable the PostgreSQL runs are
skipped, unless GATEKEEPER_REQUIRE_PEERS=1 (as in CI), which turns every
missing peer into a failure so nothing is silently left untested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gatekeeper.casebook import CaseIndex
from gatekeeper.sample import SampleRecord
from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases, import_staff
from tests.pg_schema import fresh_schema

POSTGRES_URL = os.environ.get("GATEKEEPER_TEST_POSTGRES_URL", "")
REQUIRE_PEERS = os.environ.get("GATEKEEPER_REQUIRE_PEERS") == "1"
REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
# Real broken mail from other projects (shared/corpora/, vendored so any checkout has it).
CORPORA = REPO / "tests" / "corpora"


def need_peer(available: bool, what: str) -> None:
    """Skip (locally) or fail (in CI) a test whose real peer is missing."""
    if available:
        return
    if REQUIRE_PEERS:
        pytest.fail(f"{what} is required (GATEKEEPER_REQUIRE_PEERS=1) but not available")
    pytest.skip(f"{what} is not available")


def need_program(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/lib/postfix/sbin/{name}") if os.path.exists(p)),
        None,
    )
    need_peer(path is not None, f"the program {name!r}")
    assert path is not None
    return path


@pytest.fixture(autouse=True)
def isolated_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test reads or writes the user's own data, configuration or database."""
    home = tmp_path / "home"
    monkeypatch.setenv("GATEKEEPER_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for name in ("GATEKEEPER_DATABASE_URL", "GATEKEEPER_CONFIG", "GATEKEEPER_INTERNAL_DOMAINS"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gatekeeper.db'}"
        return
    need_peer(bool(POSTGRES_URL), "PostgreSQL (GATEKEEPER_TEST_POSTGRES_URL)")
    with fresh_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The store on a fresh database, migrated."""
    store = open_store(database_url)
    yield store
    store.dispose()


SAMPLE_CASES = 60


@pytest.fixture
def sample_engine(engine: Engine) -> Engine:
    """The store holding the generated sample record (60 cases) and 20 staff."""
    sample = SampleRecord(seed=11)
    report = import_cases(engine, sample.case_lines(SAMPLE_CASES))
    assert not report.rejected
    assert not import_staff(engine, sample.staff_lines(20)).rejected
    return engine


@pytest.fixture
def sample_index(sample_engine: Engine) -> CaseIndex:
    return CaseIndex.from_store(sample_engine)


def gatekeeper_command() -> list[str]:
    """The installed console script, run as a user would."""
    script = Path(sys.executable).with_name("gatekeeper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gatekeeper"]


def run_gatekeeper(
    *args: str, db: str | None = None, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run `gatekeeper ARGS` in a subprocess; returns the completed process (never raises)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("GATEKEEPER_CONFIG", None)
    command = gatekeeper_command() + (["--db", db] if db else []) + list(args)
    return subprocess.run(  # noqa: PLW1510 (callers assert on returncode)
        command, capture_output=True, text=True, env=full_env, timeout=300, **kwargs
    )
