"""Benchmark: audit events appended per second, chained by hash against the plain insert before.

Chaining serialises writers: each one locks the chain's head row from its append
to its commit. This measures what that costs.

    python bench/audit_append.py                              # SQLite only
    python bench/audit_append.py --pg postgresql+psycopg://root@127.0.0.1:5432/test
    python bench/audit_append.py --events 300 --runs 5 --writers 1,4

Each database gets two fresh stores: one on the schema before chaining (0005),
written with the old `record_audit` (a single INSERT), and one on the current
schema, written with `gatekeeper.audit.record_audit`. Every event is its own
transaction, as a page view is in the web app (the relay groups its commits, so
it pays less). Writers are threads, each with its own connection; 4 writers show
the contention. Plain and chained runs alternate, so both see the same machine
load; the figure is the median of the runs. Figures also go to
bench/out/audit_append.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import make_url

from gatekeeper.audit import record_audit
from gatekeeper.audit.verify import verify_chain
from gatekeeper.store import create_store_engine, upgrade
from gatekeeper.store.database import alembic_config
from gatekeeper.store.models import utcnow

OUT = Path(__file__).parent / "out" / "audit_append.json"
DETAILS = {"ref": "K7Q2M9XD", "path": "/queue/item/K7Q2M9XD", "checks": ["recipient_lookalike"]}

_PLAIN = sa.table(
    "audit_events",
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("item_id", sa.Integer()),
    sa.column("details", sa.JSON()),
    sa.column("remote", sa.String()),
)

Append = Callable[[sa.Connection, int], None]


def plain_append(conn: sa.Connection, i: int) -> None:
    """`record_audit` as it was before chaining."""
    conn.execute(
        sa.insert(_PLAIN),
        {"at": utcnow(), "actor": f"checker{i % 7}@gatekeeper.example", "action": "web.viewed",
         "item_id": None, "details": DETAILS, "remote": "10.0.0.8"},
    )  # fmt: skip


def chained_append(conn: sa.Connection, i: int) -> None:
    record_audit(
        conn, "web.viewed", actor=f"checker{i % 7}@gatekeeper.example", details=DETAILS,
        remote="10.0.0.8",
    )  # fmt: skip


@contextmanager
def stores(kind: str, pg_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """(plain, chained) stores: two SQLite files, or two PostgreSQL schemas."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            engines = [create_store_engine(f"sqlite:///{folder}/{n}.db") for n in ("a", "b")]
            yield _migrate(*engines)
            for engine in engines:
                engine.dispose()
        return
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    schemas = [f"bench_audit_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with admin.connect() as conn:
        for schema in schemas:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engines = [
        create_store_engine(
            make_url(pg_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        for schema in schemas
    ]
    try:
        yield _migrate(*engines)
    finally:
        for engine in engines:
            engine.dispose()
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _migrate(plain: sa.Engine, chained: sa.Engine) -> tuple[sa.Engine, sa.Engine]:
    command.upgrade(alembic_config(plain), "0005")
    upgrade(chained)
    return plain, chained


def events_per_second(engine: sa.Engine, append: Append, writers: int, events: int) -> float:
    """`writers` threads each appending `events` events, one transaction apiece."""
    start = threading.Barrier(writers + 1)

    def writer(w: int) -> None:
        with engine.connect() as conn:
            start.wait()
            for i in range(events):
                with conn.begin():
                    append(conn, w * events + i)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return writers * events / (time.perf_counter() - began)


def bench(kind: str, pg_url: str, writer_counts: list[int], events: int, runs: int) -> list[Any]:
    rows = []
    with stores(kind, pg_url) as (plain, chained):
        for writers in writer_counts:
            figures: dict[str, list[float]] = {"plain": [], "chained": []}
            for _ in range(runs):
                figures["plain"].append(events_per_second(plain, plain_append, writers, events))
                figures["chained"].append(
                    events_per_second(chained, chained_append, writers, events)
                )
            plain_eps = statistics.median(figures["plain"])
            chained_eps = statistics.median(figures["chained"])
            rows.append({
                "database": kind, "writers": writers, "events_per_writer": events, "runs": runs,
                "plain_events_per_s": round(plain_eps, 1),
                "chained_events_per_s": round(chained_eps, 1),
                "ratio": round(chained_eps / plain_eps, 3),
            })  # fmt: skip
            print(
                f"{kind:<10} {writers:>7} {plain_eps:>12.0f} {chained_eps:>14.0f}"
                f" {chained_eps / plain_eps:>7.2f}",
                flush=True,
            )
        with chained.connect() as conn:
            appended = conn.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one()
        began = time.perf_counter()
        report = verify_chain(chained)
        took = time.perf_counter() - began
    assert report.intact and report.events == appended, report.problems[:5]
    print(f"{kind:<10} verify: {appended} events in {took:.2f} s ({appended / took:.0f}/s)")
    rows.append({"database": kind, "verify_events": appended, "verify_seconds": round(took, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default=os.environ.get("GATEKEEPER_TEST_POSTGRES_URL", ""),
                        help="PostgreSQL URL (default: $GATEKEEPER_TEST_POSTGRES_URL)")  # fmt: skip
    parser.add_argument("--events", type=int, default=300, help="events per writer per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--writers", default="1,4", help="writer counts, comma-separated")
    args = parser.parse_args()
    writer_counts = [int(w) for w in args.writers.split(",")]
    print(f"{'database':<10} {'writers':>7} {'plain ev/s':>12} {'chained ev/s':>14} {'ratio':>7}")
    rows = bench("sqlite", "", writer_counts, args.events, args.runs)
    if args.pg:
        rows += bench("postgresql", args.pg, writer_counts, args.events, args.runs)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
