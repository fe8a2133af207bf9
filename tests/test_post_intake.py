"""The letters desk on SQLite and PostgreSQL: stored first, decided, recognised when run again."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select

from gatekeeper.config import Settings
from gatekeeper.gate import Gate
from gatekeeper.held import HeldQueue
from gatekeeper.post.intake import LetterIntake
from gatekeeper.post.jobs import undone_decisions
from gatekeeper.post.pagecode import PageCode
from gatekeeper.post.printjob import Action, PrintJob
from gatekeeper.post.senders import staff_address
from gatekeeper.quarantine import Quarantine
from gatekeeper.store.correspondence import AuditEvent, Item, ItemContent
from gatekeeper.store.importer import import_cases, import_staff
from gatekeeper.store.letters import Letter
from gatekeeper.store.sealed import open_content
from tests.letters import MARK, letter_pdf
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF
from tests.test_post_stamp import rendered_codes

pytestmark = pytest.mark.postgres

SETTINGS = Settings(internal_domains=("gatekeeper.example",), cups_server="127.0.0.1:9")
MOVED = ("Mr Mark Smith", "27 Elm Street", "York YO1 7HH")
LEAK = "Re: 853206\n\nJane has moved to Flat 2, 14 Mill Lane, Leeds LS6 2AB."


@pytest.fixture
def intake(engine: Engine) -> LetterIntake:
    assert not import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in STAFF]).rejected
    gate = Gate.from_store(engine, SETTINGS)
    return LetterIntake(engine, SETTINGS, check=gate.check, node="test")


def job(number: int, user: str = "a.jones") -> PrintJob:
    return PrintJob(number, user, "letter.docx", 1, "letters", "cups.example:631")


def stored(engine: Engine, ref: str) -> tuple[Item, Letter, bytes]:
    with engine.connect() as conn:
        item = conn.execute(select(Item).where(Item.ref == ref)).one()
        letter = conn.execute(select(Letter).where(Letter.item_id == item.id)).one()
        content = conn.execute(
            select(ItemContent.raw, ItemContent.key_id).where(ItemContent.item_id == item.id)
        ).one()
    return item, letter, open_content(Quarantine.of(engine), item.id, content.key_id, content.raw)


def actions(engine: Engine, item_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(AuditEvent.action)
                .where(AuditEvent.item_id == item_id)
                .order_by(AuditEvent.id)
            ).scalars()
        )


def test_a_released_letter_is_stored_stamped_and_then_marked_printed(
    intake: LetterIntake, engine: Engine
) -> None:
    pdf = letter_pdf(MARK, pages=2)
    handled = intake.handle(job(7), pdf)
    answer = handled.answer
    assert answer.action is Action.PRINT and answer.ref and answer.pdf
    assert rendered_codes(answer.pdf)[1] == [str(PageCode(answer.ref, 2, 2, "853206-P3"))]
    item, letter, raw = stored(engine, answer.ref)
    assert raw == pdf  # the original bytes, unstamped
    assert (item.channel, item.state, item.sender) == (
        "post",
        "released",
        "a.jones@gatekeeper.example",
    )
    assert item.envelope["rcpt_to"] == ["Mr Mark Smith, 3 Oak Road, Bradford BD1 4QQ"]
    assert (letter.print_job, letter.print_server, letter.print_queue) == (
        7,
        "cups.example:631",
        "letters",
    )
    assert (letter.pages, letter.party_id) == (2, "853206-P3")
    assert intake.printed(answer.ref, 7, 0)
    item, letter, _ = stored(engine, answer.ref)
    assert item.state == "printed" and letter.print_count == 1 and letter.printed_at is not None
    assert actions(engine, item.id) == ["post.received", "post.released", "post.printed"]
    assert not intake.printed(answer.ref, 8, 0)  # another job's report is not this letter's


def test_a_held_letter_stays_held_until_approved_then_prints_on_the_same_job(
    intake: LetterIntake, engine: Engine
) -> None:
    pdf = letter_pdf(MOVED)
    first = intake.handle(job(9), pdf).answer
    assert first.action is Action.HOLD and first.ref
    assert f"ref {first.ref}" in first.message
    again = intake.handle(job(9), pdf)
    assert (again.answer.action, again.answer.ref, again.outcome) == (
        Action.HOLD,
        first.ref,
        "still_held",
    )
    assert intake.handle(job(10), pdf).answer.ref != first.ref  # another job is another letter

    queue = HeldQueue(engine, SETTINGS)
    assert queue.approve(first.ref, "b.khan@gatekeeper.example").state == "approved"
    item, letter, _ = stored(engine, first.ref)
    assert letter.job_action is None  # CUPS was not reachable: the service's sweep retries
    assert item.id in undone_decisions(engine)
    printed = intake.handle(job(9), pdf)
    assert printed.answer.action is Action.PRINT and printed.outcome == "approved"
    assert intake.handle(job(9), letter_pdf(MARK)).answer.ref != first.ref  # other bytes


def test_refused_letters_are_cancelled_whenever_cups_runs_them(
    intake: LetterIntake, engine: Engine
) -> None:
    leak, moved = letter_pdf(MARK, LEAK), letter_pdf(MOVED)
    blocked = intake.handle(job(11), leak).answer
    assert blocked.action is Action.CANCEL
    assert blocked.message.startswith(f"Gatekeeper: blocked, not printed (ref {blocked.ref})")
    again = intake.handle(job(11), leak)
    assert (again.answer.action, again.answer.ref) == (Action.CANCEL, blocked.ref)
    held = intake.handle(job(12), moved).answer
    assert held.ref is not None
    HeldQueue(engine, SETTINGS).return_to_sender(held.ref, "b.khan@gatekeeper.example", "no")
    again = intake.handle(job(12), moved)
    assert again.answer.action is Action.CANCEL and "was returned" in again.answer.message


def test_a_letter_cannot_be_corrected_like_an_email(intake: LetterIntake, engine: Engine) -> None:
    from gatekeeper.held import DecisionRefused

    held = intake.handle(job(13), letter_pdf(MOVED)).answer
    assert held.ref is not None
    with pytest.raises(DecisionRefused, match="is a letter"):
        HeldQueue(engine, SETTINGS).correct(held.ref, "b.khan@gatekeeper.example", {"x": "y"})


def test_the_print_user_is_a_member_of_staff(intake: LetterIntake, engine: Engine) -> None:
    assert staff_address(engine, "a.jones") == ("a.jones@gatekeeper.example", "North")
    assert staff_address(engine, "b.khan", "gatekeeper.example")[0] == "b.khan@gatekeeper.example"
    assert staff_address(engine, "A.Jones@Gatekeeper.Example")[0] == "a.jones@gatekeeper.example"
    assert staff_address(engine, "root") == ("root", None)
    assert staff_address(engine, "a%") == ("a%", None)


def test_a_release_that_came_after_the_backend_gave_up_is_printed_by_the_sweep(
    intake: LetterIntake, engine: Engine
) -> None:
    import datetime as dt

    answer = intake.handle(job(14), letter_pdf(MARK)).answer
    assert answer.action is Action.PRINT and answer.ref
    item, _, _ = stored(engine, answer.ref)
    assert item.id not in undone_decisions(engine)  # just decided: its backend is printing it
    assert item.id in undone_decisions(engine, late=dt.timedelta(0))
    intake.printed(answer.ref, 14, 0)
    assert item.id not in undone_decisions(engine, late=dt.timedelta(0))
