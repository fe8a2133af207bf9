"""The second check's rules, enforced by the server whoever asks: another person, a checker,
and exactly one decision per item, even when two checkers click at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, insert, select

from gatekeeper.config import Settings
from gatekeeper.held import DecisionRefused, HeldQueue
from gatekeeper.sample import SampleRecord
from gatekeeper.smtp.intake import new_ref
from gatekeeper.store.correspondence import HumanDecision, Item, ItemContent, OutboundMessage
from gatekeeper.store.models import utcnow
from tests.conftest import SAMPLE_CASES

RAW = b"From: {sender}\r\nTo: parent@example.net\r\nSubject: Contact\r\n\r\nHello.\r\n"


def staff() -> list[dict[str, object]]:
    """The staff the sample_engine fixture loaded (after its cases, from the same record)."""
    record = SampleRecord(seed=11)
    list(record.case_lines(SAMPLE_CASES))
    return list(record.staff(20))


def hold(engine: Engine, sender: str) -> str:
    """An item the gate held, as the relay stores it."""
    ref = new_ref()
    raw = RAW.replace(b"{sender}", sender.encode())
    with engine.begin() as conn:
        item_id = conn.execute(
            insert(Item).returning(Item.id),
            {
                "ref": ref,
                "channel": "email",
                "sender": sender,
                "subject": "Contact",
                "envelope": {"mail_from": sender, "rcpt_to": ["parent@example.net"]},
                "recipients": [],
                "case_ids": [],
                "data_subjects": [],
                "verdict": "hold",
                "findings": [{"check": "recipient_unknown", "severity": "hold", "summary": "?"}],
                "state": "held",
                "monitor_only": False,
                "size": len(raw),
                "sha256": "0" * 64,
                "received_at": utcnow(),
                "decided_at": utcnow(),
            },
        ).scalar_one()
        conn.execute(insert(ItemContent), {"item_id": item_id, "raw": raw})
    return ref


def test_two_checkers_deciding_at_once_exactly_one_wins(sample_engine: Engine) -> None:
    people = staff()
    sender = next(p for p in people if p["roles"] == ["staff"])["email"]
    first, second = [p["email"] for p in people if "checker" in p["roles"]][:2]  # type: ignore[index]
    ref = hold(sample_engine, str(sender))
    queue = HeldQueue(sample_engine, Settings())
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(checker: str, approve: bool) -> None:
        start.wait()
        try:
            if approve:
                queue.approve(ref, checker)
            else:
                queue.return_to_sender(ref, checker, "wrong family")
            outcomes[checker] = "decided"
        except DecisionRefused as refused:
            outcomes[checker] = str(refused)

    threads = [
        threading.Thread(target=decide, args=(str(first), True)),
        threading.Thread(target=decide, args=(str(second), False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    won = [c for c, outcome in outcomes.items() if outcome == "decided"]
    lost = [o for o in outcomes.values() if o != "decided"]
    assert len(won) == 1 and len(lost) == 1
    assert lost[0].startswith(f"{ref} was already decided")
    with sample_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(HumanDecision)).scalar_one() == 1
        kinds = conn.execute(select(OutboundMessage.kind)).scalars().all()
    assert kinds == (["item"] if won[0] == first else ["notice"])


def test_only_another_person_with_the_checker_role_may_decide(sample_engine: Engine) -> None:
    people = staff()
    sender = str(next(p for p in people if p["roles"] == ["staff"])["email"])
    plain = str(
        next(p for p in people if p["roles"] == ["staff"] and p["email"] != sender)["email"]
    )
    ref = hold(sample_engine, sender)
    queue = HeldQueue(sample_engine, Settings())
    with pytest.raises(DecisionRefused, match="the second check must be someone else's"):
        queue.approve(ref, sender)
    with pytest.raises(DecisionRefused, match="does not have the checker role"):
        queue.approve(ref, plain)
    with pytest.raises(DecisionRefused, match="is not an active member of staff"):
        queue.approve(ref, "stranger@example.org")
    assert queue.get(ref).state == "held"  # type: ignore[union-attr]
