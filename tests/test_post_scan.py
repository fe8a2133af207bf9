"""The scan station's rules on SQLite and PostgreSQL: one envelope, one whole released letter.

The letters are real: printed through the letters desk (the real gate,
stamped PDFs), their pages rendered and decoded the way the station's upload
decodes a photographed page.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from gatekeeper.config import Settings
from gatekeeper.gate import Gate
from gatekeeper.post.intake import LetterIntake
from gatekeeper.post.pagecode import PageCode
from gatekeeper.post.printjob import Action, PrintJob
from gatekeeper.post.scan import ScanRefused, ScanStation, decode_codes
from gatekeeper.store.correspondence import AuditEvent, Item
from gatekeeper.store.importer import import_cases, import_staff
from gatekeeper.store.letters import Letter, ScanAlarm
from tests.conftest import need_program
from tests.letters import JANE, MARK, letter_pdf
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

pytestmark = pytest.mark.postgres

OPERATOR = "a.jones@gatekeeper.example"


@dataclass
class Letters:
    station: ScanStation
    engine: Engine
    mark: str  # ref of a released 3-page letter to Mark Smith
    jane: str  # ref of a released 1-page letter to Jane Smith
    held: str  # ref of a letter held for a second check
    stamped: bytes  # Mark's letter as it printed


@pytest.fixture
def letters(engine: Engine) -> Letters:
    assert not import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in STAFF]).rejected
    settings = Settings(internal_domains=("gatekeeper.example",))
    desk = LetterIntake(engine, settings, check=Gate.from_store(engine, settings).check, node="t")

    def printed(number: int, pdf: bytes) -> tuple[str, bytes | None]:
        answer = desk.handle(PrintJob(number, "a.jones", "t", 1, "letters", "cups:631"), pdf).answer
        assert answer.ref is not None
        if answer.action is Action.PRINT:
            assert desk.printed(answer.ref, number, 0)
        return answer.ref, answer.pdf

    mark, stamped = printed(1, letter_pdf(MARK, pages=3))
    jane, _ = printed(2, letter_pdf(JANE, salutation="Dear Ms Smith,"))
    held, _ = printed(3, letter_pdf(("Mr Mark Smith", "27 Elm Street", "York YO1 7HH")))
    assert stamped is not None
    return Letters(ScanStation(engine), engine, mark, jane, held, stamped)


def code(ref: str, page: int, pages: int, party: str | None = None) -> str:
    return str(PageCode(ref, page, pages, party))


def test_all_pages_of_one_released_letter_complete_the_envelope_and_dispatch_is_recorded(
    letters: Letters,
) -> None:
    station = letters.station
    envelope = station.open_envelope(OPERATOR)
    first = station.scan(envelope.id, code(letters.mark, 2, 3, "853206-P3"), OPERATOR)
    assert first.status == "added" and first.message.endswith("still to scan: 1, 3.")
    assert first.envelope.letter is not None and first.envelope.letter.ref == letters.mark
    station.scan(envelope.id, code(letters.mark, 1, 3, "853206-P3"), OPERATOR)
    again = station.scan(envelope.id, code(letters.mark, 1, 3, "853206-P3"), OPERATOR)
    assert again.status == "duplicate"
    done = station.scan(envelope.id, code(letters.mark, 3, 3, "853206-P3"), OPERATOR)
    assert done.status == "complete" and done.envelope.complete
    assert "all 3 pages of letter" in done.message and "Mr Mark Smith, 3 Oak Road" in done.message

    sealed = station.dispatch(envelope.id, OPERATOR)
    assert sealed.status == "dispatched" and sealed.envelope.state == "dispatched"
    with letters.engine.connect() as conn:
        letter = conn.execute(
            select(Letter.dispatched_by, Letter.dispatched_at)
            .join(Item)
            .where(Item.ref == letters.mark)
        ).one()
        state = conn.execute(select(Item.state).where(Item.ref == letters.mark)).scalar_one()
        audit = conn.execute(
            select(AuditEvent.actor).where(AuditEvent.action == "post.dispatched")
        ).scalar_one()
    assert state == "dispatched"
    assert letter.dispatched_by == OPERATOR and letter.dispatched_at is not None
    assert audit == OPERATOR
    with pytest.raises(ScanRefused, match="dispatched"):
        station.scan(envelope.id, code(letters.mark, 1, 3), OPERATOR)


def test_a_page_of_another_letter_alarms_as_a_wrong_envelope_near_miss(letters: Letters) -> None:
    station = letters.station
    envelope = station.open_envelope(OPERATOR)
    station.scan(envelope.id, code(letters.mark, 1, 3), OPERATOR)
    outcome = station.scan(envelope.id, code(letters.jane, 1, 1, "853206-P2"), OPERATOR)
    assert outcome.status == "alarm"
    assert outcome.message.startswith(f"Page 1 of letter {letters.jane} (to Ms Jane Smith")
    assert outcome.message.endswith("take it out.")
    assert outcome.envelope.scanned == (1,)  # the stray page does not count
    with letters.engine.connect() as conn:
        alarm = conn.execute(select(ScanAlarm.__table__)).one()
        items = dict(conn.execute(select(Item.ref, Item.id)).all())
        audit = conn.execute(
            select(AuditEvent.details).where(AuditEvent.action == "scan.alarm")
        ).scalar_one()
    assert (alarm.cause, alarm.kind, alarm.operator) == ("wrong_envelope", "foreign_page", OPERATOR)
    assert (alarm.item_id, alarm.other_item_id) == (items[letters.mark], items[letters.jane])
    assert audit["cause"] == "wrong_envelope" and audit["other_ref"] == letters.jane
    station.scan(envelope.id, code(letters.mark, 2, 3), OPERATOR)
    assert station.scan(envelope.id, code(letters.mark, 3, 3), OPERATOR).status == "complete"


def test_sealing_with_a_page_missing_alarms_and_is_refused(letters: Letters) -> None:
    station = letters.station
    envelope = station.open_envelope(OPERATOR)
    station.scan(envelope.id, code(letters.mark, 1, 3), OPERATOR)
    station.scan(envelope.id, code(letters.mark, 3, 3), OPERATOR)
    outcome = station.dispatch(envelope.id, OPERATOR)
    assert outcome.status == "alarm" and outcome.alarm is not None
    assert outcome.alarm.kind == "missing_pages"
    assert "is missing page 2 of 3" in outcome.message
    assert outcome.envelope.state == "open"


def test_a_letter_never_released_alarms(letters: Letters) -> None:
    station = letters.station
    envelope = station.open_envelope(OPERATOR)
    outcome = station.scan(envelope.id, code(letters.held, 1, 1), OPERATOR)
    assert outcome.status == "alarm" and outcome.alarm is not None
    assert outcome.alarm.kind == "not_released"
    assert "was never released by Gatekeeper (it is held)" in outcome.message
    forged = station.scan(envelope.id, code("ZZZZ9999", 1, 2), OPERATOR)
    assert forged.status == "alarm" and "belongs to no letter Gatekeeper released" in forged.message
    wrong_count = station.scan(envelope.id, code(letters.mark, 1, 4), OPERATOR)
    assert wrong_count.status == "alarm"


def test_a_letter_dispatched_once_cannot_go_out_again(letters: Letters) -> None:
    station = letters.station
    first = station.open_envelope(OPERATOR)
    station.scan(first.id, code(letters.jane, 1, 1), OPERATOR)
    second = station.open_envelope("b.khan@gatekeeper.example")
    station.scan(second.id, code(letters.jane, 1, 1), "b.khan@gatekeeper.example")
    assert station.dispatch(first.id, OPERATOR).status == "dispatched"
    late = station.dispatch(second.id, "b.khan@gatekeeper.example")
    assert late.status == "alarm" and "was dispatched already" in late.message
    third = station.open_envelope(OPERATOR)
    reprint = station.scan(third.id, code(letters.jane, 1, 1), OPERATOR)
    assert reprint.status == "alarm" and reprint.alarm is not None


def test_what_is_no_page_code_is_refused_without_an_alarm(letters: Letters) -> None:
    station = letters.station
    envelope = station.open_envelope(OPERATOR)
    outcome = station.scan(envelope.id, "5012345678900", OPERATOR)
    assert outcome.status == "invalid" and not outcome.envelope.alarms
    with pytest.raises(ScanRefused, match="another operator"):
        station.scan(envelope.id, code(letters.mark, 1, 3), "b.khan@gatekeeper.example")
    assert station.current(OPERATOR) == station.envelope(envelope.id)
    station.abandon(envelope.id, OPERATOR)
    assert station.current(OPERATOR) is None


def test_a_photographed_page_is_decoded_on_the_server(letters: Letters) -> None:
    need_program("pdftoppm")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "printed.pdf"
        source.write_bytes(letters.stamped)
        subprocess.run(
            ["pdftoppm", "-r", "120", "-f", "2", "-l", "2", "-jpeg", str(source), f"{folder}/p"],
            check=True,
        )
        [image] = Path(folder).glob("p*.jpg")
        assert decode_codes(image.read_bytes()) == [code(letters.mark, 2, 3, "853206-P3")]
    assert decode_codes(b"not an image") == []
