"""The audit trail is tamper-evident: `gatekeeper audit verify` finds an altered, removed or
added event and names it; concurrent writers never fork the chain; an old store is chained
by its upgrade."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import re
from collections.abc import Sequence
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, delete, func, insert, select, text, update

from gatekeeper.audit import record_audit
from gatekeeper.audit.chain import deferred_audit, event_hash
from gatekeeper.gate import Gate
from gatekeeper.register.retention import PURGE_ACTION, purge
from gatekeeper.store import create_store_engine
from gatekeeper.store.correspondence import AuditChainHead, AuditEvent, Item
from gatekeeper.store.database import alembic_config
from tests.audit_writers import append_events
from tests.conftest import run_gatekeeper
from tests.register_facts import (
    CHECKER,
    CONFIDENTIAL,
    GOVERNANCE,
    LOOKALIKE,
    build_gate,
    load_record,
    queue,
    send,
)

INTACT = re.compile(r"^(\d+) events, chain intact, head ([0-9a-f]{64})$")
LATER = dt.timedelta(days=31)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    return build_gate(tmp_path_factory.mktemp("gate"))


@pytest.fixture
def store(engine: Engine, gate: Gate) -> Engine:
    """A store whose audit trail was written by the relay's intake, checkers and retention."""
    load_record(engine)
    send(engine, gate, CONFIDENTIAL)  # blocked
    returned = send(engine, gate, LOOKALIKE)[1]
    approved = send(engine, gate, LOOKALIKE)[1]
    held = queue(engine)
    held.return_to_sender(returned, CHECKER, "wrong address")
    held.approve(approved, CHECKER)
    purge(engine, 30, now=dt.datetime.now(dt.UTC) + LATER)
    return engine


def verify(database_url: str, *anchors: str) -> tuple[int, list[str]]:
    expect = [arg for anchor in anchors for arg in ("--expect-head", anchor)]
    result = run_gatekeeper("audit", "verify", *expect, db=database_url)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout.splitlines()


def intact(database_url: str) -> tuple[int, str]:
    """(events, head) of a chain verify finds intact; fails the test otherwise."""
    status, lines = verify(database_url)
    assert status == 0, lines
    found = INTACT.match(lines[-1])
    assert found, lines
    return int(found[1]), found[2]


def event(engine: Engine, action: str) -> Any:
    """The first event of `action`, as a row."""
    with engine.connect() as conn:
        return conn.execute(
            select(AuditEvent.__table__).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).first()


def count_events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def last_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(AuditEvent.seq))).scalar_one())


def change(engine: Engine, seq: int, **values: Any) -> None:
    """What someone with the database's password does: an UPDATE behind Gatekeeper's back."""
    with engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(**values))


def remove(engine: Engine, seqs: Sequence[int]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq.in_(seqs)))


def test_a_trail_written_by_real_code_paths_verifies(database_url: str, store: Engine) -> None:
    searched = run_gatekeeper("register", "search", "Jane Smith", db=database_url)
    assert searched.returncode == 0, searched.stderr  # the search is audited by the CLI process

    events, head = intact(database_url)
    assert events == count_events(store)
    with store.connect() as conn:
        actions = set(conn.execute(select(AuditEvent.action)).scalars())
    assert {"relay.blocked", "relay.held", "held.return", "held.approve", PURGE_ACTION,
            "register.subject_search"} <= actions  # fmt: skip

    anchor = run_gatekeeper("audit", "head", db=database_url)
    assert anchor.returncode == 0, anchor.stderr
    assert anchor.stdout.strip() == f"event {events}, head {head}"


@pytest.mark.parametrize(
    "column, value",
    [
        ("details", {"ref": "K7Q2M9XD", "note": "", "confirmed": [], "corrected": []}),
        ("actor", "c.ndlovu@gatekeeper.example"),
        ("at", dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)),
    ],
)
def test_tampering_with_one_audit_row_is_detected(
    database_url: str, store: Engine, column: str, value: Any
) -> None:
    approval = event(store, "held.approve")
    change(store, approval.seq, **{column: value})

    status, lines = verify(database_url)
    assert status == 1
    actor = value if column == "actor" else CHECKER
    assert lines == [f"event {approval.seq} (held.approve by {actor} at {_at(store, approval.seq)})"
                     " was altered"]  # fmt: skip


def test_a_row_rewritten_with_a_recomputed_hash_is_caught_by_the_next_link(
    database_url: str, store: Engine
) -> None:
    approval = event(store, "held.approve")
    forged = {**approval.details, "note": "checked with the family by phone"}
    digest = event_hash(
        approval.prev_hash,
        seq=approval.seq,
        at=approval.at,
        actor=approval.actor,
        action=approval.action,
        item_id=approval.item_id,
        details=forged,
        remote=approval.remote,
    )
    change(store, approval.seq, details=forged, hash=digest)

    status, lines = verify(database_url)
    assert status == 1
    assert lines == [
        f"event {approval.seq} (held.approve by {CHECKER} at {_at(store, approval.seq)}) was"
        f" altered or replaced and its hash recomputed: event {approval.seq + 1} was chained to"
        " a different one"
    ]


def test_deleted_events_are_named(database_url: str, store: Engine) -> None:
    approval = event(store, "held.approve").seq
    remove(store, [approval])
    remove(store, [2, 3])

    status, lines = verify(database_url)
    assert status == 1
    assert lines == ["events 2–3 are missing", f"event {approval} is missing"]


def test_a_row_inserted_outside_the_chain_is_reported(database_url: str, store: Engine) -> None:
    beyond = last_seq(store) + 1
    with store.begin() as conn:  # the head is not moved: only record_audit moves it
        conn.execute(
            insert(AuditEvent).values(
                seq=beyond, prev_hash="0" * 64, hash="0" * 64, at=dt.datetime.now(dt.UTC),
                actor=CHECKER, action="held.approve", details={"ref": "K7Q2M9XD"},
            )
        )  # fmt: skip

    status, lines = verify(database_url)
    assert status == 1
    assert lines == [f"event {beyond} is beyond the chain's head: added outside Gatekeeper"]


def test_a_truncated_tail_is_detected_and_an_anchored_head_catches_a_rewritten_one(
    database_url: str, store: Engine
) -> None:
    events, anchor = intact(database_url)
    remove(store, [events - 1, events])

    status, lines = verify(database_url)
    assert status == 1
    assert lines == [f"events {events - 1}–{events} are missing from the end (the head is event"
                     f" {events})"]  # fmt: skip

    # Someone who also winds the head back leaves a chain that is whole by itself...
    with store.begin() as conn:
        last = conn.execute(
            select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq == events - 2)
        ).one()
        conn.execute(update(AuditChainHead).values(seq=last.seq, hash=last.hash))
    assert intact(database_url) == (events - 2, last.hash)
    # ...but not one that holds the head an earlier run printed and somebody kept.
    status, lines = verify(database_url, anchor)
    assert status == 1
    assert lines == [f"the anchored head {anchor} is not in the chain: events up to it were"
                     " rewritten, or removed from the end"]  # fmt: skip
    # An anchor the chain has grown past is still found.
    status, lines = verify(database_url, last.hash)
    assert status == 0
    assert lines[0] == f"anchored head {last.hash} is event {events - 2}"


def test_retention_purge_keeps_the_chain_whole_and_a_deleted_item_shows(
    database_url: str, store: Engine, gate: Gate
) -> None:
    blocked_id, blocked_ref, _ = send(store, gate, CONFIDENTIAL)
    report = purge(store, 30, now=dt.datetime.now(dt.UTC) + LATER)
    assert report.purged == [blocked_ref]  # content gone, the item and its events stay
    intact(database_url)

    # Gatekeeper never deletes an item; whoever does empties item_id in its events.
    with store.begin() as conn:
        events = conn.execute(
            select(AuditEvent.seq, AuditEvent.action, AuditEvent.details)
            .where(AuditEvent.item_id == blocked_id)
            .order_by(AuditEvent.seq)
        ).all()
        conn.execute(delete(Item).where(Item.id == blocked_id))
    status, lines = verify(database_url)
    assert status == 1
    assert [a for _, a, _ in events] == ["relay.blocked", "register.recorded", PURGE_ACTION]
    assert len(lines) == len(events)
    for (seq, _, details), line in zip(events, lines, strict=True):
        assert line.startswith(f"event {seq} (")
        why = f" (its item {blocked_ref} was deleted, which empties item_id)"
        assert line.endswith("was altered" + (why if "ref" in details else ""))


WRITERS = 2
THREADS = 2
EACH = 40


def test_concurrent_writers_leave_one_intact_chain(database_url: str, engine: Engine) -> None:
    """Some write an event a transaction (the web pages), some a group chained at the end of
    its transaction (the relay's group commit); together they make one chain."""
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(WRITERS * THREADS)
    writers = [
        spawn.Process(
            target=append_events,
            args=(database_url, w, THREADS, EACH, start),
            kwargs={"group": 1 + 4 * (w % 2)},
        )
        for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=240)
        assert process.exitcode == 0

    total = WRITERS * THREADS * EACH
    assert intact(database_url)[0] == total
    with engine.connect() as conn:
        seqs = conn.execute(select(AuditEvent.seq).order_by(AuditEvent.seq)).scalars().all()
        per_actor = dict(
            conn.execute(select(AuditEvent.actor, func.count()).group_by(AuditEvent.actor)).all()
        )
    assert seqs == list(range(1, total + 1))
    assert per_actor == {f"w{w}.{n}": EACH for w in range(WRITERS) for n in range(THREADS)}


def test_events_held_back_for_a_group_vanish_with_its_failed_transaction(
    database_url: str, engine: Engine
) -> None:
    with engine.begin() as conn:
        record_audit(conn, "test.before")

    class Failed(Exception):
        pass

    with pytest.raises(Failed), engine.begin() as conn, deferred_audit(conn):
        record_audit(conn, "test.lost", details={"n": 1})
        record_audit(conn, "test.lost", details={"n": 2})
        raise Failed
    with engine.begin() as conn, deferred_audit(conn):
        for n in range(3):
            record_audit(conn, "test.kept", details={"n": n})

    assert intact(database_url)[0] == 4
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEvent.seq, AuditEvent.action, AuditEvent.details).order_by(AuditEvent.seq)
        ).all()
    assert [(r.seq, r.action) for r in rows] == [
        (1, "test.before"), (2, "test.kept"), (3, "test.kept"), (4, "test.kept")
    ]  # fmt: skip
    assert [r.details for r in rows[1:]] == [{"n": 0}, {"n": 1}, {"n": 2}]  # in their order


def test_an_old_store_is_chained_by_its_upgrade(database_url: str) -> None:
    engine = create_store_engine(database_url)
    command.upgrade(alembic_config(engine), "0006")  # the last before the chain
    with engine.begin() as conn:
        for i in range(5):
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, actor, action, details, remote)"
                    " VALUES (:at, :actor, 'web.login', :details, '10.0.0.9')"
                ),
                {"at": dt.datetime(2026, 3, 1, 8, i, 0, 123456, tzinfo=dt.UTC),
                 "actor": GOVERNANCE, "details": '{"z": 1, "a": "Zoë"}'},
            )  # fmt: skip
    engine.dispose()

    upgraded = run_gatekeeper("db", "upgrade", db=database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert intact(database_url)[0] == 5


def test_a_deleted_head_is_reported_then_restored_in_the_chain(
    database_url: str, store: Engine
) -> None:
    events, _ = intact(database_url)
    with store.begin() as conn:
        conn.execute(delete(AuditChainHead))
    status, lines = verify(database_url)
    assert status == 1
    assert lines[0].startswith("the chain's head (table audit_chain_head) is missing")

    with store.begin() as conn:  # the next event puts it back, and says so
        record_audit(conn, "web.login", actor=GOVERNANCE)
    status, lines = verify(database_url)
    assert status == 0
    assert lines[0].startswith(f"event {events + 1} (audit.head_restored at ")
    summary = INTACT.match(lines[-1])
    assert summary and int(summary[1]) == events + 2


def _at(engine: Engine, seq: int) -> str:
    with engine.connect() as conn:
        at = conn.execute(select(AuditEvent.at).where(AuditEvent.seq == seq)).scalar_one()
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return f"{at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
