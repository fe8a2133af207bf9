"""The register fills itself: every automatic path makes exactly one near miss, with the right
cause, category and data, however many times and on however many nodes the sync runs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select

from gatekeeper.gate import Gate
from gatekeeper.register import sync, sync_store
from gatekeeper.register.causes import CHECK_CAUSES, Cause, cause_of
from gatekeeper.register.entries import Entry, list_entries
from gatekeeper.register.models import RegisterEntry, RegisterVersion
from gatekeeper.store.correspondence import AuditEvent, ItemContent
from tests.letters import MARK as MARK_ADDRESS
from tests.letters import letter_pdf
from tests.register_facts import (
    AUTOCOMPLETE,
    CHECKER,
    CONFIDENTIAL,
    LOOKALIKE,
    OTHER_CHECKER,
    SENDER,
    WRONG_CONTENT,
    build_gate,
    letter,
    load_record,
    mark_canary,
    queue,
    scan_alarm,
    send,
)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    return build_gate(tmp_path_factory.mktemp("gate"))


@pytest.fixture
def store(engine: Engine) -> Engine:
    load_record(engine)
    return engine


def entries(engine: Engine) -> list[Entry]:
    with engine.connect() as conn:
        return list_entries(conn)


def test_a_blocked_item_becomes_one_near_miss_with_its_cause_data_and_link(
    store: Engine, gate: Gate
) -> None:
    item_id, ref, decision = send(store, gate, CONFIDENTIAL)
    assert decision.verdict.value == "block"
    assert sync_store(store).added == {"blocked": 1}
    [entry] = entries(store)
    assert (entry.kind, entry.source_kind, entry.cause, entry.category) == (
        "near_miss",
        "blocked",
        "confidential_address",
        "IV",
    )
    assert (entry.channel, entry.team, entry.sender) == ("email", "North", SENDER)
    assert (entry.item_id, entry.item_ref) == (item_id, ref)
    assert entry.checks[0] == "confidential_address_leak"
    assert "853206-P2" in entry.data_subjects  # Jane, whose address it was
    assert entry.people_affected == len(entry.data_subjects)
    # "positive for cocaine" is special-category data; Jane's postcode is a contact detail.
    assert entry.data_kinds == ("special_category", "contact_details")
    assert "drugs_alcohol" in entry.special_categories
    assert entry.summary.startswith("Jane Smith's confidential contact details are going to")
    assert not entry.reportable and not entry.reported


@pytest.mark.parametrize(
    ("mistake", "cause", "kinds"),
    [
        (LOOKALIKE, "lookalike_address", ()),
        (AUTOCOMPLETE, "autocomplete", ()),
        (WRONG_CONTENT, "wrong_content", ("criminal_offence",)),
    ],
    ids=["lookalike", "autocomplete", "wrong_content"],
)
def test_a_hold_the_checker_returns_becomes_one_near_miss_with_its_cause(
    store: Engine, gate: Gate, mistake: dict[str, object], cause: str, kinds: tuple[str, ...]
) -> None:
    _, ref, decision = send(store, gate, mistake)
    assert decision.verdict.value == "hold"
    queue(store).return_to_sender(ref, CHECKER, "not this address")
    assert sync_store(store).added == {"returned": 1}
    [entry] = entries(store)
    assert (entry.kind, entry.source_kind, entry.cause, entry.category) == (
        "near_miss",
        "returned",
        cause,
        "IV",
    )
    assert entry.decided_by == CHECKER and entry.item_ref == ref
    assert entry.data_kinds == kinds
    assert "Returned to the sender unsent by b.khan@gatekeeper.example" in entry.mitigation
    assert '"not this address"' in entry.mitigation


def test_a_hold_the_checker_corrects_becomes_one_near_miss(store: Engine, gate: Gate) -> None:
    _, ref, _ = send(store, gate, LOOKALIKE)
    queue(store).correct(ref, CHECKER, {"m.smith77@example.co": "m.smith77@example.com"})
    assert sync_store(store).added == {"corrected": 1}
    [entry] = entries(store)
    assert (entry.source_kind, entry.cause) == ("corrected", "lookalike_address")
    assert "m.smith77@example.co -> m.smith77@example.com" in entry.mitigation


def test_approved_expired_and_withdrawn_holds_are_not_near_misses(
    store: Engine, gate: Gate
) -> None:
    held = queue(store)
    approved = send(store, gate, LOOKALIKE)[1]
    expired = send(store, gate, AUTOCOMPLETE)[1]
    withdrawn = send(store, gate, LOOKALIKE)[1]
    held.approve(approved, CHECKER)
    held.expire(expired)
    held.withdraw(withdrawn, SENDER)
    assert sync_store(store).total == 0
    assert entries(store) == []


def test_a_missed_canary_is_one_near_miss_of_its_checker_and_a_caught_one_none(
    store: Engine, gate: Gate
) -> None:
    held = queue(store)
    missed_id, missed, _ = send(store, gate, LOOKALIKE)
    caught_id, caught, _ = send(store, gate, LOOKALIKE)
    mark_canary(store, missed_id)
    mark_canary(store, caught_id)
    held.approve(missed, OTHER_CHECKER)
    held.return_to_sender(caught, CHECKER)
    assert sync_store(store).added == {"missed_canary": 1}
    [entry] = entries(store)
    assert (entry.source_kind, entry.cause, entry.category) == (
        "missed_canary",
        "lookalike_address",
        "IV",
    )
    # The miss is the checker's: their team, not the name the canary was planted under.
    assert (entry.decided_by, entry.team, entry.sender) == (OTHER_CHECKER, "South", None)
    assert entry.item_ref == missed


def test_a_scan_alarm_is_one_wrong_envelope_near_miss_about_the_stray_page(
    store: Engine,
) -> None:
    envelope = letter(store, letter_pdf(MARK_ADDRESS), data_subjects=["853206-P3"])
    stray = letter(
        store,
        letter_pdf(
            ("Ms Sarah Jones", "9 Beech Grove", "Leeds LS6 2AB"),
            "Re: Amy Jones, case 853999\n\nAmy remains subject to a child protection plan.",
        ),
        data_subjects=["853999-P1", "853999-P2"],
        team="South",
    )
    scan_alarm(store, item_id=envelope, other_item_id=stray)
    assert sync_store(store).added == {"scan_alarm": 1}
    [entry] = entries(store)
    assert (entry.source_kind, entry.cause, entry.category, entry.channel) == (
        "scan_alarm",
        "wrong_envelope",
        "IV",
        "post",
    )
    assert entry.item_id == stray  # whose data would have gone out
    assert entry.data_subjects == ("853999-P1", "853999-P2")
    assert entry.team == "North"  # the envelope's letter's sender
    assert entry.decided_by == "p.room@gatekeeper.example"
    assert "safeguarding" in entry.data_kinds


def test_a_scan_alarm_about_a_page_nobody_can_match_is_still_one_near_miss(
    store: Engine,
) -> None:
    scan_alarm(store, item_id=None, other_item_id=None, kind="not_released")
    assert sync_store(store).added == {"scan_alarm": 1}
    [entry] = entries(store)
    assert (entry.cause, entry.channel, entry.item_ref, entry.people_affected) == (
        "wrong_envelope",
        "post",
        None,
        0,
    )
    assert entry.summary == "page 2 of another letter scanned into this envelope"


def test_sync_run_twice_and_from_two_threads_at_once_makes_each_entry_once(
    store: Engine, gate: Gate
) -> None:
    held = queue(store)
    send(store, gate, CONFIDENTIAL)
    send(store, gate, CONFIDENTIAL)
    held.return_to_sender(send(store, gate, LOOKALIKE)[1], CHECKER)
    held.correct(
        send(store, gate, LOOKALIKE)[1], CHECKER, {"m.smith77@example.co": "m.smith77@example.com"}
    )
    start = threading.Barrier(2)
    made: list[int] = []
    failures: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            made.append(sync_store(store).total)
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert sum(made) == 4
    assert sync_store(store).total == 0
    with store.connect() as conn:
        sources = conn.execute(select(RegisterEntry.source_kind)).scalars().all()
        versions = conn.execute(select(func.count()).select_from(RegisterVersion)).scalar_one()
        audited = conn.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "register.recorded")
        ).scalar_one()
    assert sorted(sources) == ["blocked", "blocked", "corrected", "returned"]
    assert versions == audited == 4


def test_a_sync_that_finds_the_content_purged_still_records_from_the_findings(
    store: Engine, gate: Gate
) -> None:
    item_id, _, _ = send(store, gate, CONFIDENTIAL)
    with store.begin() as conn:
        conn.execute(delete(ItemContent).where(ItemContent.item_id == item_id))
    with store.begin() as conn:
        assert sync(conn).added == {"blocked": 1}
    [entry] = entries(store)
    assert entry.cause == "confidential_address"
    assert entry.data_kinds == ("contact_details",)  # the finding says so; the text is gone


def test_each_check_names_its_cause_and_the_precedence_is_the_tables_order() -> None:
    expected = {
        "recipient_other_case": Cause.AUTOCOMPLETE,
        "recipient_lookalike": Cause.LOOKALIKE_ADDRESS,
        "display_name_mismatch": Cause.LOOKALIKE_ADDRESS,
        "postal_address_mismatch": Cause.LOOKALIKE_ADDRESS,  # a letter's near-miss address
        "attachment_other_case": Cause.WRONG_ATTACHMENT,
        "content_other_case": Cause.WRONG_CONTENT,
        "confidential_address_leak": Cause.CONFIDENTIAL_ADDRESS,
        "visible_recipients": Cause.VISIBLE_RECIPIENTS,
        "recipient_unknown": Cause.OTHER,
        "unreadable_content": Cause.OTHER,
    }
    for check, cause in expected.items():
        assert cause_of([check]) is cause
    assert cause_of(["content_other_case", "confidential_address_leak"]) is (
        Cause.CONFIDENTIAL_ADDRESS
    )
    assert cause_of([]) is Cause.OTHER
    assert len({name for name, _ in CHECK_CAUSES}) == len(CHECK_CAUSES)


def test_the_cause_table_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for check, cause in CHECK_CAUSES:
        assert f"| `{check}` | {cause.label} |" in readme
