"""Importing the case record and staff: idempotent, in place, and losing nothing on bad lines."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gatekeeper.sample import SampleRecord
from gatekeeper.store.importer import count_cases, import_cases, import_staff
from gatekeeper.store.models import Case, Party, PartyEmail, PartyPostalAddress, StaffUser
from tests.spec_example import SPEC_EXAMPLE


def spec_case(**changes: Any) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(json.dumps(SPEC_EXAMPLE))
    case.update(changes)
    return case


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the import writes, in a comparable form."""
    with Session(engine) as session:
        return {
            "cases": sorted(
                tuple(row)
                for row in session.execute(
                    select(Case.id, Case.case_id, Case.status, Case.record_hash)
                )
            ),
            "parties": sorted(
                (p.party_id, p.case_id, p.role, p.name, tuple(p.withheld_from))
                for p in session.scalars(select(Party))
            ),
            "emails": sorted(
                tuple(row)
                for row in session.execute(select(PartyEmail.party_id, PartyEmail.address))
            ),
            "postal": sorted(
                (a.party_id, tuple(a.lines), a.postcode)
                for a in session.scalars(select(PartyPostalAddress))
            ),
        }


def test_importing_the_same_file_twice_changes_nothing(engine: Engine) -> None:
    lines = list(SampleRecord(seed=3).case_lines(40))
    first = import_cases(engine, lines)
    before = snapshot(engine)
    second = import_cases(engine, lines)
    assert (first.added, first.updated, first.unchanged) == (40, 0, 0)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 40)
    assert snapshot(engine) == before


def test_a_newer_export_updates_cases_in_place(engine: Engine) -> None:
    import_cases(engine, [json.dumps(spec_case())])
    with Session(engine) as session:
        row_id = session.scalars(select(Case.id).where(Case.case_id == "853206")).one()
    newer = spec_case(status="closed")
    newer["parties"][2]["emails"] = ["mark.smith@example.org"]
    del newer["parties"][4]  # the social worker left the case
    report = import_cases(engine, [json.dumps(newer)])
    assert (report.added, report.updated) == (0, 1)
    with Session(engine) as session:
        case = session.scalars(select(Case).where(Case.case_id == "853206")).one()
        assert case.id == row_id, "the case keeps its row, so what refers to it stays valid"
        assert case.status == "closed"
        assert [p.party_id for p in case.parties] == [f"853206-P{i}" for i in range(1, 5)]
        mark = next(p for p in case.parties if p.party_id == "853206-P3")
        assert [e.address for e in mark.emails] == ["mark.smith@example.org"]
        assert session.scalar(select(func.count()).select_from(PartyEmail)) == 3


def test_bad_lines_are_rejected_with_line_number_and_the_rest_loads(engine: Engine) -> None:
    good = SampleRecord(seed=5)
    lines = list(good.case_lines(6))
    bad_email = spec_case(case_id="900001")
    bad_email["parties"][2]["emails"] = ["m.smith77@@example.com"]
    unknown_role = spec_case(case_id="900002")
    unknown_role["parties"][0]["role"] = "uncle"
    missing_name = spec_case(case_id="900003")
    del missing_name["parties"][1]["name"]
    bad_postcode = spec_case(case_id="900004")
    bad_postcode["parties"][2]["postal_addresses"][0]["postcode"] = "ZZ"
    unknown_withheld = spec_case(case_id="900005")
    unknown_withheld["parties"][1]["withheld_from"] = ["nobody"]
    lines[1:1] = ["{broken json", json.dumps(bad_email), ""]
    lines += [
        json.dumps(unknown_role),
        json.dumps({"parties": []}),
        json.dumps(missing_name),
        json.dumps(bad_postcode),
        json.dumps(unknown_withheld),
        json.dumps(spec_case(case_id="900006")),
    ]
    report = import_cases(engine, lines)
    reasons = {r.line: r.reason for r in report.rejected}
    assert set(reasons) == {2, 3, 10, 11, 12, 13, 14}
    assert "not valid JSON" in reasons[2]
    assert "invalid email address 'm.smith77@@example.com'" in reasons[3]
    assert "unknown role 'uncle'" in reasons[10]
    assert "missing 'case_id'" in reasons[11]
    assert "missing 'name'" in reasons[12]
    assert "invalid UK postcode 'ZZ'" in reasons[13]
    assert "withheld_from names unknown party 'nobody'" in reasons[14]
    assert report.added == 7, "the six good sample cases and the last, valid, line"
    assert count_cases(engine)[0] == 7
    assert "7 loaded" in report.summary() and "7 rejected" in report.summary()


def test_a_party_id_already_used_by_another_case_is_a_duplicate(engine: Engine) -> None:
    import_cases(engine, [json.dumps(spec_case())])
    thief = {
        "case_id": "777777",
        "parties": [{"party_id": "853206-P3", "role": "respondent", "name": "Mark Smith"}],
    }
    in_same_file = {
        "case_id": "777778",
        "parties": [{"party_id": "777777-P1", "role": "child", "name": "A Child"}],
    }
    clash_in_file = {
        "case_id": "777779",
        "parties": [{"party_id": "777777-P1", "role": "child", "name": "Another"}],
    }
    report = import_cases(
        engine, [json.dumps(thief), json.dumps(in_same_file), json.dumps(clash_in_file)]
    )
    reasons = {r.line: r.reason for r in report.rejected}
    assert reasons[1] == "duplicate party_id '853206-P3': already in case 853206"
    assert reasons[3] == "duplicate party_id '777777-P1': already in case 777778"
    assert report.added == 1
    with Session(engine) as session:
        owner = session.scalars(select(Party.case_id).where(Party.party_id == "853206-P3")).one()
    assert owner == "853206"


def test_a_case_twice_in_one_file_keeps_the_first(engine: Engine) -> None:
    report = import_cases(engine, [json.dumps(spec_case()), json.dumps(spec_case(status="closed"))])
    assert [str(r) for r in report.rejected] == ["line 2: case 853206 already appears on line 1"]


def test_staff_import_updates_in_place_and_keeps_the_password(engine: Engine) -> None:
    alice = {"email": "a.jones@gatekeeper.example", "name": "Alice Jones", "roles": ["staff"]}
    import_staff(engine, [json.dumps(alice), json.dumps({"email": "bad"})])
    with Session(engine) as session, session.begin():
        user = session.scalars(select(StaffUser)).one()
        user.password_hash = "argon2-hash-kept"
    alice.update(roles=["staff", "checker"], team="North")
    report = import_staff(engine, [json.dumps(alice)])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 0)
    with Session(engine) as session:
        user = session.scalars(select(StaffUser)).one()
        assert user.role_names == ["checker", "staff"]
        assert user.team == "North"
        assert user.password_hash == "argon2-hash-kept"
    again = import_staff(engine, [json.dumps(alice)])
    assert again.unchanged == 1


def test_the_progress_callback_sees_every_byte(engine: Engine) -> None:
    lines = [f"{line}\n".encode() for line in SampleRecord(seed=9).case_lines(10)]
    seen: list[int] = []
    import_cases(engine, lines, progress=seen.append)
    assert sum(seen) == sum(len(line) for line in lines)
