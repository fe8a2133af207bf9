"""The held-item sweep: an item waiting past the policy's limit is marked and its team's
checkers told, once; one past the expiry returns to its sender unsent, with a notice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email import message_from_bytes

import pytest
from sqlalchemy import Engine, update

from gatekeeper.store.correspondence import Item
from gatekeeper.sweep import HeldSweep
from tests.conftest import run_gatekeeper
from tests.web_world import WebWorld, shared_fixtures, web_world

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def world(engine: Engine) -> Iterator[WebWorld]:
    yield from web_world(engine, shared_fixtures(), web_public_url="https://gatekeeper.test")


def waited(world: WebWorld, ref: str, hours: float) -> None:
    """The item came in `hours` ago."""
    with world.engine.begin() as conn:
        conn.execute(
            update(Item)
            .where(Item.ref == ref)
            .values(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours))
        )


def test_an_item_waiting_too_long_is_escalated_once_to_its_teams_checkers(
    world: WebWorld,
) -> None:
    fresh, late = world.hold_lookalike(), world.hold_lookalike(skip=1, sender=world.checker2)
    lonely = world.hold_lookalike(skip=2)  # from a team with no checker of its own
    waited(world, late, 2)  # the default policy escalates after 60 minutes
    waited(world, lonely, 3)
    sweep = HeldSweep(world.engine, world.settings)
    report = sweep.run()
    assert (report.escalated, report.expired) == ([lonely, late], [])
    checkers = [s for s in world.record.staff if "checker" in s["roles"]]
    team = sorted(
        s["email"]
        for s in checkers
        if s["team"] == world.checker2.team and s["email"] != world.checker2.email
    )
    assert team and world.sender.team not in {s["team"] for s in checkers}
    assert sorted(n.recipient for n in world.outbound(late)) == team  # never the sender
    assert sorted(n.recipient for n in world.outbound(lonely)) == sorted(
        s["email"] for s in checkers
    )
    notice = world.outbound(late)[0]
    text = " ".join(message_from_bytes(notice.raw).get_payload(decode=True).decode().split())
    assert late in text and f"https://gatekeeper.test/items/{late}" in text
    assert world.outbound(fresh) == []
    assert sweep.run().escalated == []  # once only
    assert len(world.outbound(late)) == len(team)
    told = {e.details["ref"]: e.details["told"] for e in world.audit("held.escalated")}
    assert told[late] == team

    checker = world.client(world.checker)
    queue = checker.get("/queue?overdue=1").text
    assert late in queue and fresh not in queue and "overdue" in queue
    assert "escalated" in checker.get(f"/items/{late}").text


def test_a_held_letter_waiting_too_long_is_escalated_as_a_letter(world: WebWorld) -> None:
    ref = world.hold_lookalike()
    with world.engine.begin() as conn:
        conn.execute(update(Item).where(Item.ref == ref).values(channel="post"))
    waited(world, ref, 2)
    assert HeldSweep(world.engine, world.settings).run().escalated == [ref]
    notices = world.outbound(ref)
    assert notices
    for notice in notices:
        text = " ".join(message_from_bytes(notice.raw).get_payload(decode=True).decode().split())
        assert f"A letter from {world.sender.email}" in text, text
        assert "email" not in text.replace(world.sender.email, ""), text


def test_an_item_nobody_decided_in_time_returns_to_its_sender(world: WebWorld) -> None:
    ref = world.hold_lookalike()
    waited(world, ref, 73)  # the default policy expires after 72 hours
    report = HeldSweep(world.engine, world.settings).run()
    assert report.expired == [ref]
    item = world.item(ref)
    assert item.state == "expired"
    [notice] = [n for n in world.outbound(ref) if n.recipient == world.sender.email]
    assert notice.kind == "notice" and b"Not sent, no second check in time" in notice.raw
    assert not [n for n in world.outbound(ref) if n.kind == "item"]
    sender = world.client(world.sender)
    assert "Nobody decided on it in time" in sender.get("/mine").text


def test_the_sweep_from_the_command_line(database_url: str, world: WebWorld) -> None:
    ref = world.hold_lookalike()
    waited(world, ref, 2)
    done = run_gatekeeper("held", "sweep", db=database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "escalated 1, expired 0, canaries planted 0"
