"""Canary items: synthetic mis-addressed emails in the queue that measure whether checkers
catch what they should. Made from the record and held by the real gate, shown exactly like
real items, scored per checker for governance, and never sent anywhere, whatever happens."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from gatekeeper.canaries import CanaryMaker
from gatekeeper.held import DecisionRefused, HeldQueue
from gatekeeper.policy import ApprovalPolicy
from gatekeeper.store.approval import Canary
from gatekeeper.store.correspondence import Item, OutboundMessage
from gatekeeper.store.models import utcnow
from gatekeeper.sweep import HeldSweep
from tests.web_world import WebWorld, csrf_of, shared_fixtures, web_world

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def world(engine: Engine) -> Iterator[WebWorld]:
    yield from web_world(engine, shared_fixtures())


def maker(world: WebWorld, seed: int = 5) -> CanaryMaker:
    return CanaryMaker(world.engine, world.settings, seed=seed, gate=world.gate)


def plant(world: WebWorld, kind: str, seed: int = 5) -> str:
    ref = maker(world, seed).plant([kind])
    assert ref is not None
    return ref


def canary(world: WebWorld, ref: str) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(
            select(Canary).join(Item, Item.id == Canary.item_id).where(Item.ref == ref)
        ).one()


def skeleton(page: str) -> tuple[Any, ...]:
    """What a page is made of, whatever its words: sections, form fields, buttons, headers."""
    return (
        re.findall(r"<h2[^>]*>([^<]*)</h2>", page),
        sorted(set(re.findall(r'name="([^"]+)"', page))),
        re.findall(r"<button[^>]*>([^<]*)</button>", page),
        re.findall(r"<dt>([^<]*)</dt>", page),
    )


def test_a_canary_is_held_by_the_real_gate_and_looks_like_any_held_item(world: WebWorld) -> None:
    lookalike = plant(world, "recipient_lookalike")
    other_case = plant(world, "recipient_other_case", seed=8)
    real = world.hold_lookalike()
    for ref, kind in ((lookalike, "recipient_lookalike"), (other_case, "recipient_other_case")):
        item = world.item(ref)
        assert item.state == "held" and item.verdict == "hold" and item.findings
        assert item.sender not in (world.checker.email, world.checker2.email)
        row = canary(world, ref)
        assert row.kind == kind and row.outcome is None
        assert item.envelope["rcpt_to"] == [row.planted] and row.planted != row.expected
    assert "looks like" in world.item(lookalike).findings[0]["summary"]

    checker = world.client(world.checker)
    queue = checker.get("/queue").text
    assert all(ref in queue for ref in (lookalike, other_case, real))
    pages = {ref: checker.get(f"/items/{ref}").text for ref in (lookalike, real)}
    for page in [queue, *pages.values(), checker.get("/static/gatekeeper.js").text]:
        assert "canary" not in page.lower()
    # The same page: the same sections, fields and buttons; only the words differ.
    assert skeleton(pages[lookalike]) == skeleton(pages[real])
    nominal = world.client(world.sender)
    assert lookalike not in nominal.get("/mine").text  # nobody's own item


def test_no_decision_ever_sends_a_canary_anywhere(world: WebWorld) -> None:
    refs = [plant(world, "recipient_lookalike", seed=s) for s in (1, 2, 3, 4)]
    approved, returned, corrected, expired = refs
    checker = world.client(world.checker)
    for ref, what, data in (
        (approved, "approve", {}),
        (returned, "return", {"note": "Not the record's address."}),
    ):
        page = checker.get(f"/items/{ref}")
        confirm = [str(i) for i in range(len(world.item(ref).findings))]
        response = checker.post(
            f"/items/{ref}/{what}", data={"csrf": csrf_of(page.text), "confirm": confirm, **data}
        )
        assert response.status_code == 303, response.text
    queue = HeldQueue(world.engine, world.settings)
    held = queue.get(corrected)
    assert held is not None
    choices = queue.correction_choices(held)
    assert choices, "a look-alike canary can be corrected to the record's address"
    used, offered = next(iter(choices.items()))
    queue.correct(corrected, world.checker2.email, {used: offered[0]}, confirmed=range(9))
    queue.expire(expired)
    with pytest.raises(DecisionRefused, match="you have no item"):
        queue.withdraw(approved, world.item(approved).sender)

    with world.engine.connect() as conn:
        sent = conn.execute(select(func.count()).select_from(OutboundMessage)).scalar_one()
    assert sent == 0  # no delivery, no notice to the nominal sender, nothing
    states = {ref: world.item(ref).state for ref in refs}
    assert states == {approved: "approved", returned: "returned", corrected: "corrected",
                      expired: "expired"}  # fmt: skip
    scores = {ref: (canary(world, ref).outcome, canary(world, ref).checker) for ref in refs}
    assert scores == {
        approved: ("missed", world.checker.email),
        returned: ("caught", world.checker.email),
        corrected: ("caught", world.checker2.email),
        expired: ("expired", None),
    }

    governance = world.client(world.governance).get("/governance/canaries")
    assert governance.status_code == 200
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"<tr>\s*<td>([^<]+@[^<]+)</td>.*?</tr>", governance.text, re.S)
    }
    assert set(rows) >= {world.checker.email, world.checker2.email}
    caught_missed = re.findall(r"<td>(\d+)</td><td(?: class=\"warn-cell\")?>(\d+)</td>",
                               rows[world.checker.email])  # fmt: skip
    assert caught_missed[-1] == ("1", "1")
    assert "50% of 2" in governance.text and "100% of 1" in governance.text
    for ref in refs:
        assert ref in governance.text


def test_canaries_are_planted_at_the_policys_rate(world: WebWorld) -> None:
    for skip in range(4):
        world.hold_lookalike(skip=skip)
    queue = HeldQueue(world.engine, world.settings, approval=ApprovalPolicy(canary_rate=0.25))
    sweep = HeldSweep(world.engine, world.settings, queue=queue, canaries=maker(world))
    assert sweep.run().canaries == 1  # one in five held items
    for skip in range(4, 8):
        world.hold_lookalike(skip=skip)
    # Due again, but another round (here, or on another node) planted within the spacing:
    assert sweep.run().canaries == 0
    assert sweep.run(utcnow() + dt.timedelta(minutes=1)).canaries == 1  # two in ten
    assert sweep.run(utcnow() + dt.timedelta(minutes=2)).canaries == 0
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Canary)).scalar_one() == 2
    off = HeldQueue(world.engine, world.settings, approval=ApprovalPolicy(canary_rate=0.0))
    later = utcnow() + dt.timedelta(minutes=3)
    assert (
        HeldSweep(world.engine, world.settings, queue=off, canaries=maker(world))
        .run(later)
        .canaries
        == 0
    )
