"""The case index answers the checks' questions about the whole record, from the store."""

from __future__ import annotations

import json
import random

import pytest
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein
from sqlalchemy import Engine

from gatekeeper.casebook import CaseIndex, name_key
from gatekeeper.store.importer import import_cases
from tests.spec_example import SPEC_EXAMPLE


@pytest.fixture
def spec_index(engine: Engine) -> CaseIndex:
    """The spec's example case, plus a second case the same solicitor acts in."""
    other = {
        "case_id": "853999",
        "aliases": ["LS12P34567"],
        "parties": [
            {"party_id": "853999-P1", "role": "child", "name": "Amy Jones"},
            {"party_id": "853999-P2", "role": "applicant", "name": "Sarah Jones",
             "emails": ["sarah.jones@example.org"], "confidential": True,
             "postal_addresses": [{"lines": ["9 Beech Grove", "Leeds"], "postcode": "ls6 2ab"}]},
            {"party_id": "853999-P3", "role": "respondent", "name": "Dean Jones"},
            {"party_id": "853999-P4", "role": "solicitor", "name": "Priya Shah",
             "represents": "853999-P2", "emails": ["P.Shah@shahco-law.example"]},
            {"party_id": "853999-P5", "role": "solicitor", "name": "Ian Hart",
             "represents": "853999-P3", "emails": ["i.hart@hartley-law.example"]},
            {"party_id": "853999-P6", "role": "court", "name": "Leeds Family Court"},
        ],
    }  # fmt: skip
    report = import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(other)])
    assert not report.rejected
    return CaseIndex.from_store(engine)


def test_exact_address_finds_its_party_and_case_whatever_the_letter_case(
    spec_index: CaseIndex,
) -> None:
    [mark] = spec_index.owners("M.Smith77@Example.COM")
    assert (mark.party_id, mark.case_id, mark.name) == ("853206-P3", "853206", "Mark Smith")
    assert spec_index.owners("m.smith78@example.com") == []


def test_a_solicitor_acting_in_two_cases_is_found_in_both(spec_index: CaseIndex) -> None:
    owners = spec_index.owners("p.shah@shahco-law.example")
    assert sorted((p.party_id, p.case_id) for p in owners) == [
        ("853206-P4", "853206"),
        ("853999-P4", "853999"),
    ]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("m.smith77@example.co", "m.smith77@example.com"),  # domain cut short
        ("m.smith77@exmaple.com", "m.smith77@example.com"),  # transposed in the domain
        ("m.smtih77@example.com", "m.smith77@example.com"),  # transposed in the local part
        ("m.smith76@example.com", "m.smith77@example.com"),  # wrong digit
        ("jane.smith@example.net.", "jane.smith@example.net"),
        ("owen.pryce@leeds.example.gov.uk", "owen.price@leeds.example.gov.uk"),
    ],
)
def test_a_look_alike_address_is_matched_to_the_verified_one(
    spec_index: CaseIndex, typed: str, meant: str
) -> None:
    matches = spec_index.similar_addresses(typed, threshold=85)
    assert matches, f"{typed} should look like {meant}"
    best = matches[0]
    assert best.address == meant
    assert 85 <= best.similarity < 100
    assert all(p.emails for p in best.parties)


def test_the_exact_address_and_unrelated_ones_are_not_look_alikes(spec_index: CaseIndex) -> None:
    assert spec_index.similar_addresses("m.smith77@example.com") == []
    assert spec_index.similar_addresses("completely.different@elsewhere.example") == []


def test_names_are_found_across_all_cases_with_other_names(spec_index: CaseIndex) -> None:
    assert [p.party_id for p in spec_index.parties_named("tommy SMITH")] == ["853206-P1"]
    assert [p.party_id for p in spec_index.parties_named("Tom Smith")] == ["853206-P1"]
    priya = spec_index.parties_named("Priya  Shah")
    assert {p.case_id for p in priya} == {"853206", "853999"}
    assert spec_index.parties_named("Tom Jones") == []
    assert spec_index.has_name(name_key("Mark Smith"))
    assert spec_index.longest_name_words == 3  # "Leeds Family Court"


def test_name_keys_ignore_case_accents_and_punctuation() -> None:
    assert name_key("Zoë  O'Brien-Smith") == name_key("zoe o brien smith")


def test_parties_at_a_postcode_best_address_match_first(spec_index: CaseIndex) -> None:
    matches = spec_index.parties_at("ls62ab", ["14 Mill Lane", "Leeds"])
    assert [m.party.party_id for m in matches] == ["853206-P2", "853999-P2"]
    assert matches[0].similarity > matches[1].similarity
    assert [m.party.party_id for m in spec_index.parties_at("BD1 4QQ")] == ["853206-P3"]
    assert spec_index.parties_at("not a postcode") == []


def test_case_references_and_aliases_name_the_case(spec_index: CaseIndex) -> None:
    case = spec_index.case_for_reference("com0755749")
    assert case is not None and case.case_id == "853206"
    assert spec_index.case_for_reference("ls12p34567").case_id == "853999"  # type: ignore[union-attr]
    assert spec_index.case_for_reference("000000") is None
    assert [p.party_id for p in spec_index.case_parties("853206")][:2] == ["853206-P1", "853206-P2"]


def test_withheld_from_as_listed_or_worked_out_for_confidential(spec_index: CaseIndex) -> None:
    jane = spec_index.parties["853206-P2"]
    assert jane.withheld_from == {"853206-P3"}, "an explicit list is taken as written"
    sarah = spec_index.parties["853999-P2"]
    # confidential with no list: everyone but herself, her own solicitor, the court, professionals
    assert sarah.withheld_from == {"853999-P1", "853999-P3", "853999-P5"}
    assert spec_index.parties["853206-P3"].withheld_from == frozenset()


def test_look_alike_search_finds_what_a_full_scan_finds(sample_index: CaseIndex) -> None:
    """Blocking never loses an address one slip away that scanning every address would find.

    A slip is a transposition, a deleted or a changed character, anywhere but the `@`.
    """
    rng = random.Random(4)
    addresses = sample_index.all_addresses()

    def slip(address: str) -> str:
        i = rng.randrange(len(address) - 1)
        kind = rng.randrange(3)
        if kind == 0:
            return address[:i] + address[i + 1] + address[i] + address[i + 2 :]
        if kind == 1:
            return address[:i] + address[i + 1 :]
        return address[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + address[i + 1 :]

    checked = 0
    while checked < 400:
        meant = rng.choice(addresses)
        typed = slip(meant)
        if typed in addresses or typed.split("@")[0] == "" or typed.count("@") != 1:
            continue
        if typed.index("@") != meant.index("@") and len(typed) == len(meant):
            continue  # the slip moved the @
        checked += 1
        scanned = {
            found: score
            for found, score, _ in process.extract(
                typed, addresses, scorer=fuzz.ratio, score_cutoff=80, limit=None
            )
        }
        one_slip = {a for a in scanned if DamerauLevenshtein.distance(a, typed) <= 1}
        blocked = {m.address.casefold() for m in sample_index.similar_addresses(typed, 80, 50)}
        assert meant in blocked, typed
        assert one_slip <= blocked, typed
        assert blocked <= set(scanned), typed
