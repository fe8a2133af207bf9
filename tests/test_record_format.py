"""The case-record exchange format: what a line must hold, and the reason when it does not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatekeeper.record import RecordError, parse_case_line, parse_staff_line
from tests.spec_example import SPEC_EXAMPLE


def line(**changes: Any) -> str:
    case = json.loads(json.dumps(SPEC_EXAMPLE))
    case.update(changes)
    return json.dumps(case)


def with_party(index: int, **changes: Any) -> str:
    case = json.loads(json.dumps(SPEC_EXAMPLE))
    case["parties"][index].update(changes)
    for key, value in changes.items():
        if value is None:
            del case["parties"][index][key]
    return json.dumps(case)


def test_the_spec_example_parses_with_every_field() -> None:
    case = parse_case_line(json.dumps(SPEC_EXAMPLE))
    assert case.case_id == "853206"
    assert case.aliases == ("COM0755749",)
    tom, jane, mark, priya, owen = case.parties
    assert tom.other_names == ("Tommy Smith",) and tom.contact_allowed is False
    assert str(tom.date_of_birth) == "2012-03-03"
    assert jane.confidential and jane.withheld_from == ("853206-P3",)
    assert jane.postal_addresses[0].lines == ("Flat 2", "14 Mill Lane", "Leeds")
    assert priya.represents == "853206-P2" and priya.organisation == "Shah & Co Solicitors"
    assert mark.emails == ("m.smith77@example.com",)
    assert owen.role == "social_worker"


def test_status_defaults_to_open_and_unknown_fields_are_kept() -> None:
    case = parse_case_line(line(status=None, court="Leeds FC"))
    assert case.status == "open"
    assert case.extra == {"court": "Leeds FC"}


def test_email_domains_and_postcodes_are_normalised() -> None:
    case = parse_case_line(
        with_party(
            2,
            emails=["M.Smith77@EXAMPLE.com", "m.smith77@example.com"],
            postal_addresses=[{"lines": ["3 Oak Road"], "postcode": " bd14qq "}],
        )
    )
    mark = case.parties[2]
    assert mark.emails == ("M.Smith77@example.com", "m.smith77@example.com")
    assert mark.postal_addresses[0].postcode == "BD1 4QQ"


def test_identical_content_has_the_same_fingerprint_whatever_the_key_order() -> None:
    reordered = json.dumps(dict(reversed(list(SPEC_EXAMPLE.items()))))
    assert parse_case_line(reordered).record_hash == parse_case_line(line()).record_hash
    assert parse_case_line(line(status="closed")).record_hash != parse_case_line(line()).record_hash


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (line(case_id=None), "missing 'case_id'"),
        (line(case_id="  "), "'case_id' is empty"),
        (line(parties=None), "missing 'parties'"),
        (line(status="pending"), "unknown status 'pending'"),
        (with_party(1, party_id=None), "party 2: missing 'party_id'"),
        (with_party(1, name=None), "party 853206-P2: missing 'name'"),
        (with_party(1, role=None), "party 853206-P2: missing 'role'"),
        (with_party(1, role="uncle"), "party 853206-P2: unknown role 'uncle'"),
        (with_party(2, party_id="853206-P2"), "duplicate party_id '853206-P2'"),
        (with_party(2, emails=["m.smith77@"]), "invalid email address 'm.smith77@'"),
        (with_party(2, emails=["no-at-sign.example.com"]), "invalid email address"),
        (
            with_party(2, postal_addresses=[{"lines": ["3 Oak Road"], "postcode": "12345"}]),
            "invalid UK postcode '12345'",
        ),
        (
            with_party(1, withheld_from=["853206-P9"]),
            "withheld_from names unknown party '853206-P9'",
        ),
        (with_party(3, represents="853206-P9"), "represents names unknown party '853206-P9'"),
        (
            with_party(0, date_of_birth="03/03/2012"),
            "date_of_birth '03/03/2012' is not an ISO date",
        ),
        (with_party(0, contact_allowed="no"), "'contact_allowed' must be true or false"),
    ],
)
def test_a_bad_line_is_rejected_with_a_reason_naming_the_problem(text: str, reason: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_case_line(text)
    assert reason in str(caught.value)


def test_staff_line_with_roles_and_team() -> None:
    staff = parse_staff_line(
        '{"email": "A.Jones@Gatekeeper.Example", "name": "Alice Jones", '
        '"roles": ["staff", "checker"], "team": "North"}'
    )
    assert staff.email == "A.Jones@gatekeeper.example"
    assert staff.roles == ("checker", "staff")
    assert staff.team == "North"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"name": "No Email"}', "missing 'email'"),
        ('{"email": "x@gatekeeper.example"}', "missing 'name'"),
        ('{"email": "x@", "name": "X"}', "invalid email address"),
        (
            '{"email": "x@gatekeeper.example", "name": "X", "roles": ["boss"]}',
            "unknown role 'boss'",
        ),
    ],
)
def test_a_bad_staff_line_is_rejected_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_staff_line(text)
    assert reason in str(caught.value)
