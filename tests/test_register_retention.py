"""Retention: content goes after the policy's period, metadata and register entries stay, every
purge is audited, and nothing still needed (held, queued for delivery) is ever purged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from gatekeeper.gate import Gate
from gatekeeper.policy import PolicyError, load_policy
from gatekeeper.register.entries import list_entries
from gatekeeper.register.retention import PURGE_ACTION, purge
from gatekeeper.register.schedule import register_round
from gatekeeper.store.correspondence import (
    AuditEvent,
    HumanDecision,
    Item,
    ItemContent,
    OutboundMessage,
)
from tests.letters import letter_pdf
from tests.register_facts import (
    CHECKER,
    CONFIDENTIAL,
    LOOKALIKE,
    build_gate,
    letter,
    load_record,
    queue,
    send,
    state_of,
)

LATER = dt.timedelta(days=31)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    return build_gate(tmp_path_factory.mktemp("gate"))


@pytest.fixture
def store(engine: Engine) -> Engine:
    load_record(engine)
    return engine


def has_content(engine: Engine, item_id: int) -> bool:
    with engine.connect() as conn:
        found = conn.execute(select(ItemContent.id).where(ItemContent.item_id == item_id))
        return found.first() is not None


def test_content_is_purged_after_the_period_and_the_metadata_and_entry_stay(
    store: Engine, gate: Gate
) -> None:
    held = queue(store)
    blocked_id, blocked_ref, _ = send(store, gate, CONFIDENTIAL)
    returned_id, returned_ref, _ = send(store, gate, LOOKALIKE)
    held.return_to_sender(returned_ref, CHECKER, "wrong address")
    waiting_id, _, _ = send(store, gate, LOOKALIKE)  # still held: never purged
    approved_id, approved_ref, _ = send(store, gate, LOOKALIKE)
    held.approve(approved_ref, CHECKER)  # its delivery is still queued: not purged yet
    now = dt.datetime.now(dt.UTC)

    assert purge(store, 30, now=now).purged == []  # nothing is 30 days old yet
    report = purge(store, 30, now=now + LATER)
    assert sorted(report.purged) == sorted([blocked_ref, returned_ref])
    assert report.bytes > 0
    assert not has_content(store, blocked_id) and not has_content(store, returned_id)
    assert has_content(store, waiting_id) and has_content(store, approved_id)
    assert state_of(store, waiting_id) == "held"

    with store.connect() as conn:
        # The items, the decision and the register entries (captured before the purge) stay.
        refs = set(conn.execute(select(Item.ref)).scalars())
        assert {blocked_ref, returned_ref} <= refs
        assert "wrong address" in conn.execute(select(HumanDecision.note)).scalars().all()
        entries = {e.item_ref: e for e in list_entries(conn)}
        audited = conn.execute(
            select(AuditEvent.item_id, AuditEvent.details).where(AuditEvent.action == PURGE_ACTION)
        ).all()
    assert entries[blocked_ref].data_kinds == ("special_category", "contact_details")
    assert entries[returned_ref].cause == "lookalike_address"
    assert sorted((i, d["ref"]) for i, d in audited) == sorted(
        [(blocked_id, blocked_ref), (returned_id, returned_ref)]
    )
    assert all(d["bytes"] > 0 and d["content_days"] == 30 for _, d in audited)

    # Once the approved item has left, its content goes too; a second run purges nothing more.
    with store.begin() as conn:
        conn.execute(
            update(OutboundMessage)
            .where(OutboundMessage.item_id == approved_id)
            .values(state="delivered")
        )
    assert purge(store, 30, now=now + LATER).purged == [approved_ref]
    assert purge(store, 30, now=now + LATER).purged == []


def test_a_dry_run_changes_nothing_and_zero_days_keeps_everything(
    store: Engine, gate: Gate
) -> None:
    item_id, ref, _ = send(store, gate, CONFIDENTIAL)
    later = dt.datetime.now(dt.UTC) + LATER
    assert purge(store, 30, now=later, dry_run=True).purged == [ref]
    assert has_content(store, item_id)
    assert purge(store, 0, now=later).purged == []
    assert has_content(store, item_id)


def test_the_policy_sets_the_period_and_a_wrong_value_is_reported_by_line(
    tmp_path: Path,
) -> None:
    assert load_policy().retention.content_days == 30
    site = tmp_path / "site.yaml"
    site.write_text("version: 1\nretention:\n  content_days: 7\n")
    assert load_policy(site).retention.content_days == 7
    site.write_text("version: 1\nretention:\n  content_days: -1\n  keep: forever\n")
    with pytest.raises(PolicyError) as wrong:
        load_policy(site)
    assert wrong.value.problems == [
        f"{site}:3: retention: content_days must be days >= 0, not -1",
        f"{site}:4: retention: unknown key 'keep' (expected content_days)",
    ]
    site.write_text("version: 1\nretention: 30\n")
    with pytest.raises(PolicyError, match=r"site.yaml:2: retention must be a mapping"):
        load_policy(site)


def test_the_background_round_syncs_each_time_and_purges_once_a_day_across_nodes(
    store: Engine, gate: Gate
) -> None:
    _, first, _ = send(store, gate, CONFIDENTIAL)
    later = dt.datetime.now(dt.UTC) + LATER
    one = register_round(store, node="web-1", content_days=30, now=later)
    assert one.synced.added == {"blocked": 1}
    assert one.retention is not None and one.retention.purged == [first]
    _, second, _ = send(store, gate, CONFIDENTIAL)
    other_node = register_round(store, node="web-2", content_days=30, now=later)
    assert other_node.synced.added == {"blocked": 1}  # every round syncs, on every node
    assert other_node.retention is None  # the day's retention has run already
    next_day = register_round(
        store, node="web-2", content_days=30, now=later + dt.timedelta(days=1)
    )
    assert next_day.retention is not None and next_day.retention.purged == [second]


def test_a_letter_keeps_its_content_until_the_postal_room_dispatches_it(store: Engine) -> None:
    on_its_way = letter(store, letter_pdf(), data_subjects=["853206-P3"])
    dispatched = letter(store, letter_pdf(), data_subjects=["853206-P3"])
    with store.begin() as conn:
        conn.execute(update(Item).where(Item.id == dispatched).values(state="dispatched"))
    report = purge(store, 30, now=dt.datetime.now(dt.UTC) + LATER)
    assert len(report.purged) == 1
    assert has_content(store, on_its_way) and not has_content(store, dispatched)
