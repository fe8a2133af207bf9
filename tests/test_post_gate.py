"""The gate on letters: the postal rule, and the content checks on channel `post`.

The record is the spec's example (Mark Smith at 3 Oak Road, Bradford BD1 4QQ;
Jane Smith, confidential from Mark, at Flat 2, 14 Mill Lane, Leeds LS6 2AB;
Priya Shah at her firm) and case 853999, plus a case whose father may not be
written to directly. Every letter is a real PDF read by the real reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.config import Settings
from gatekeeper.decision import Decision
from gatekeeper.gate import Gate
from gatekeeper.post.letter import item_from_letter
from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases, import_staff
from tests.letters import MARK, PRIYA, letter_pdf
from tests.mailfiles import encrypted_pdf
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

SETTINGS = Settings(internal_domains=("gatekeeper.example",))
NO_CONTACT_CASE: dict[str, Any] = {
    "case_id": "854100",
    "parties": [
        {"party_id": "854100-P1", "role": "child", "name": "Ruby Okafor"},
        {"party_id": "854100-P2", "role": "applicant", "name": "Grace Okafor",
         "postal_addresses": [{"lines": ["8 Kiln Street", "Wakefield"], "postcode": "WF1 2PQ"}]},
        {"party_id": "854100-P3", "role": "respondent", "name": "Daniel Okafor",
         "contact_allowed": False,
         "postal_addresses": [{"lines": ["41 Quarry Hill", "Wakefield"], "postcode": "WF2 7RT"}]},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("letters")
    url = f"sqlite:///{folder / 'gk.db'}"
    engine = open_store(url)
    cases = [SPEC_EXAMPLE, OTHER_CASE, NO_CONTACT_CASE]
    assert not import_cases(engine, [json.dumps(c) for c in cases]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in STAFF]).rejected
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def gate(store: str) -> Gate:
    return Gate.from_store(open_store(store), SETTINGS)


def check(gate: Gate, pdf: bytes) -> Decision:
    return gate.check(item_from_letter(pdf, sender="a.jones@gatekeeper.example"))


def fired(decision: Decision) -> list[str]:
    return [r.finding.check for r in decision.findings if r.severity.value != "info"]


def summary(decision: Decision, name: str) -> str:
    return next(r.finding.summary for r in decision.findings if r.finding.check == name)


def test_a_letter_to_the_address_on_the_record_is_released(gate: Gate) -> None:
    decision = check(gate, letter_pdf(MARK))
    assert decision.verdict.value == "release", decision.as_json()
    assert decision.channel.value == "post"
    assert decision.case_ids == ("853206",)
    [recipient] = decision.as_json()["recipients"]
    assert recipient == {
        "address": "Mr Mark Smith, 3 Oak Road, Bradford BD1 4QQ",
        "kind": "postal",
        "party_id": "853206-P3",
        "case_id": "853206",
    }
    assert {"853206-P1", "853206-P3"} <= set(decision.data_subjects)


@pytest.mark.parametrize(
    "address",
    [
        ("Mr M. Smith", "3 Oak Rd", "Bradford", "BD1 4QQ"),  # initial, abbreviation
        ("MARK SMITH", "3 OAK ROAD", "BRADFORD", "bd1 4qq"),  # capitals, postcode as typed
        ("Mr Mark Smith", "3 Oak Road", "Bradford", "West Yorkshire", "BD1 4QQ"),  # a county
    ],
)
def test_small_differences_in_writing_the_same_address_are_released(
    gate: Gate, address: tuple[str, ...]
) -> None:
    assert check(gate, letter_pdf(address)).verdict.value == "release"


def test_a_solicitor_is_reached_at_her_firm(gate: Gate) -> None:
    decision = check(gate, letter_pdf(PRIYA, salutation="Dear Ms Shah,"))
    assert decision.verdict.value == "release", decision.as_json()
    assert decision.recipients[0].party_id == "853206-P4"


def test_the_right_name_at_another_address_is_held_with_the_address_on_record(gate: Gate) -> None:
    decision = check(gate, letter_pdf(("Mr Mark Smith", "27 Elm Street", "York YO1 7HH")))
    assert decision.verdict.value == "hold"
    assert fired(decision) == ["postal_address_mismatch"]
    assert summary(decision, "postal_address_mismatch") == (
        "the letter is addressed to Mr Mark Smith, 27 Elm Street, York YO1 7HH, but the record "
        "has 3 Oak Road, Bradford BD1 4QQ for Mark Smith"
    )


def test_another_house_at_the_same_postcode_is_held(gate: Gate) -> None:
    decision = check(gate, letter_pdf(("Mr Mark Smith", "5 Oak Road", "Bradford BD1 4QQ")))
    assert fired(decision) == ["postal_address_mismatch"]
    assert "the record has 3 Oak Road, Bradford BD1 4QQ for Mark Smith" in summary(
        decision, "postal_address_mismatch"
    )


def test_a_flat_number_left_out_is_held(gate: Gate) -> None:
    decision = check(
        gate,
        letter_pdf(("Ms Jane Smith", "14 Mill Lane", "Leeds LS6 2AB"), salutation="Dear Jane,"),
    )
    assert fired(decision) == ["postal_address_mismatch"]
    assert "Flat 2, 14 Mill Lane, Leeds LS6 2AB for Jane Smith" in summary(
        decision, "postal_address_mismatch"
    )


def test_a_partys_address_with_someone_elses_name_is_held(gate: Gate) -> None:
    decision = check(
        gate,
        letter_pdf(("Ms Jane Smith", "3 Oak Road", "Bradford BD1 4QQ"), salutation="Dear Jane,"),
    )
    assert fired(decision) == ["postal_address_mismatch"]
    assert "Flat 2, 14 Mill Lane, Leeds LS6 2AB for Jane Smith" in summary(
        decision, "postal_address_mismatch"
    )


def test_what_lands_at_a_partys_home_counts_as_sent_to_them(gate: Gate) -> None:
    """Jane's new address in a letter for Jane, but sent to Mark's house: Mark reads it."""
    body = "Re: 853206\n\nYour new address, Flat 2, 14 Mill Lane, is now on our file."
    decision = check(
        gate,
        letter_pdf(
            ("Ms Jane Smith", "3 Oak Road", "Bradford BD1 4QQ"), body, salutation="Dear Jane,"
        ),
    )
    assert decision.verdict.value == "block"
    assert fired(decision)[0] == "confidential_address_leak"


def test_a_confidential_address_in_a_letter_to_the_party_it_is_withheld_from_is_blocked(
    gate: Gate,
) -> None:
    body = "Re: 853206\n\nJane has moved to Flat 2, 14 Mill Lane, Leeds LS6 2AB."
    decision = check(gate, letter_pdf(MARK, body))
    assert decision.verdict.value == "block"
    rated = decision.findings[0]
    assert rated.finding.check == "confidential_address_leak" and rated.forced
    assert "the postcode LS6 2AB in the body" in rated.finding.summary


def test_a_letter_about_another_case_is_held(gate: Gate) -> None:
    body = "Re: Amy Jones, case LS12P34567\n\nThe hearing about Amy is on 3 April."
    decision = check(gate, letter_pdf(MARK, body))
    assert fired(decision) == ["recipient_other_case"]
    assert summary(decision, "recipient_other_case").endswith(
        "the record's postal addresses for case 853999 are 9 Beech Grove, Leeds LS6 2AB (Sarah Jones)"
    )


def test_another_familys_names_in_a_letter_are_held(gate: Gate) -> None:
    body = (
        "Re: Tom Smith, case 853206\n\nThe contact session is on Tuesday. Sarah Jones and "
        "Amy Jones will not attend."
    )
    decision = check(gate, letter_pdf(MARK, body))
    assert fired(decision) == ["content_other_case"]


def test_special_category_content_to_an_unverified_addressee_is_held(gate: Gate) -> None:
    body = "Re: 853206\n\nTom's mental health assessment is enclosed."
    decision = check(
        gate,
        letter_pdf(
            ("Mrs Ann Brown", "12 Elm Street", "York YO1 7HH"), body, salutation="Dear Mrs Brown,"
        ),
    )
    assert fired(decision) == ["recipient_unknown"]
    rated = decision.findings[0]
    assert rated.finding.variant is None
    assert "carries case details or sensitive data" in rated.finding.summary
    assert "mental_health" in rated.finding.evidence["special_categories"]


def test_an_unknown_addressee_is_held_on_post_even_without_sensitive_content(gate: Gate) -> None:
    body = "Thank you for your letter about the parking permit."
    decision = check(
        gate,
        letter_pdf(
            ("Mrs Ann Brown", "12 Elm Street", "York YO1 7HH"), body, salutation="Dear Mrs Brown,"
        ),
    )
    assert decision.verdict.value == "hold"
    assert decision.findings[0].finding.variant == "not_sensitive"


def test_a_party_not_to_be_contacted_is_held(gate: Gate) -> None:
    body = "Re: 854100\n\nThe review meeting about Ruby is on 2 May."
    decision = check(
        gate, letter_pdf(("Mr Daniel Okafor", "41 Quarry Hill", "Wakefield WF2 7RT"), body)
    )
    assert fired(decision) == ["contact_not_allowed"]
    assert summary(decision, "contact_not_allowed").endswith(
        "the record's other addresses for case 854100 are 8 Kiln Street, Wakefield WF1 2PQ (Grace Okafor)"
    )


def test_an_unreadable_letter_is_held_with_the_reason(gate: Gate) -> None:
    decision = check(gate, encrypted_pdf("Mr Mark Smith\n3 Oak Road\nBradford BD1 4QQ"))
    assert fired(decision) == ["unreadable_content"]
    assert summary(decision, "unreadable_content").startswith("encrypted PDF")


def test_how_alike_the_lines_must_be_is_a_policy_setting(store: str, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "checks:\n  postal_address_mismatch:\n    settings:\n      min_line_similarity: 99\n"
    )
    gate = Gate.from_store(
        open_store(store),
        Settings(internal_domains=("gatekeeper.example",), policy_file=str(strict)),
    )
    abbreviated = ("Mr Mark Smith", "3 Oak Rd", "Bradford", "BD1 4QQ")
    assert fired(check(gate, letter_pdf(abbreviated))) == ["postal_address_mismatch"]
    assert check(gate, letter_pdf(MARK)).verdict.value == "release"
