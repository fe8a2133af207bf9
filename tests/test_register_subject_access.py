"""Subject access: everything the store holds about one person, found by party id, email
address or name, and exported whole."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import Engine, select

from gatekeeper.gate import Gate
from gatekeeper.register import sync_store
from gatekeeper.register.export import tables_csv
from gatekeeper.register.incidents import record_entry
from gatekeeper.register.subject_access import audit_search, search_subject
from gatekeeper.store.correspondence import AuditEvent
from tests.register_facts import (
    AUTOCOMPLETE,
    CHECKER,
    CONFIDENTIAL,
    GOVERNANCE,
    LOOKALIKE,
    SENDER,
    build_gate,
    load_record,
    queue,
    send,
)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    return build_gate(tmp_path_factory.mktemp("gate"))


@pytest.fixture
def world(engine: Engine, gate: Gate) -> dict[str, str]:
    """Mail about Jane (blocked), to Mark (returned), to Sarah (held), and an incident."""
    load_record(engine)
    refs = {
        "confidential": send(engine, gate, CONFIDENTIAL)[1],  # Jane's address, to Mark
        "lookalike": send(engine, gate, LOOKALIKE)[1],  # to a look-alike of Mark's address
        "autocomplete": send(engine, gate, AUTOCOMPLETE)[1],  # to Sarah Jones, about Tom
    }
    queue(engine).return_to_sender(refs["lookalike"], CHECKER, "Mark Smith's address is wrong")
    with engine.begin() as conn:
        record_entry(
            conn,
            {
                "kind": "incident",
                "summary": "Sarah Jones phoned: she had a letter meant for another family",
                "discovered_at": dt.datetime.now(dt.UTC),
                "data_subjects": ["853999-P2"],
            },
            actor=GOVERNANCE,
        )
    sync_store(engine)
    return refs


def test_a_party_id_finds_their_items_decisions_and_entries(
    engine: Engine, world: dict[str, str]
) -> None:
    with engine.connect() as conn:
        found = search_subject(conn, "853206-P3")  # Mark Smith
    assert [s.name for s in found.subjects] == ["Mark Smith"]
    items = {i.ref: i.why for i in found.items}
    assert "recipient" in items[world["confidential"]]
    # That email went to Sarah, but its finding names Mark among the record's contacts.
    assert items[world["autocomplete"]] == ("named in a finding",)
    assert [d.item_ref for d in found.decisions] == [world["lookalike"]]
    assert {e.item_ref for e in found.entries} >= {world["confidential"], world["lookalike"]}


def test_an_email_address_finds_the_party_and_a_staff_address_what_they_sent(
    engine: Engine, world: dict[str, str]
) -> None:
    with engine.connect() as conn:
        sarah = search_subject(conn, "Sarah.Jones@EXAMPLE.org")
        staff = search_subject(conn, SENDER)
    assert [s.party_id for s in sarah.subjects] == ["853999-P2"]
    assert {i.ref for i in sarah.items} == {world["autocomplete"]}
    assert any("phoned" in e.summary for e in sarah.entries)
    assert staff.subjects == []
    assert {i.ref for i in staff.items} == set(world.values())
    assert all(i.why == ("sender",) for i in staff.items)


def test_a_name_finds_the_party_by_any_name_the_record_knows(
    engine: Engine, world: dict[str, str]
) -> None:
    with engine.connect() as conn:
        tom = search_subject(conn, "tommy  SMITH")
        jane = search_subject(conn, "Jane Smith")
        nobody = search_subject(conn, "Nobody Known")
    assert [s.party_id for s in tom.subjects] == ["853206-P1"]
    assert [s.party_id for s in jane.subjects] == ["853206-P2"]
    assert world["confidential"] in {i.ref for i in jane.items}
    assert nobody.empty


def test_the_answer_exports_as_csv_and_json_and_the_search_is_audited(
    engine: Engine, world: dict[str, str]
) -> None:
    with engine.begin() as conn:
        found = search_subject(conn, "853206-P2")
        audit_search(conn, found, actor=GOVERNANCE)
    cells = list(csv.DictReader(io.StringIO(tables_csv(found.tables()).removeprefix("\ufeff"))))
    assert {
        "table": "subjects",
        "row": "853206-P2",
        "column": "name",
        "value": "Jane Smith",
    } in cells
    data = json.loads(json.dumps(found.as_json()))
    assert data["subjects"][0]["party_id"] == "853206-P2"
    assert {i["ref"] for i in data["items"]} == {i.ref for i in found.items}
    with engine.connect() as conn:
        [details] = conn.execute(
            select(AuditEvent.details).where(AuditEvent.action == "register.subject_search")
        ).scalars()
    assert details["query"] == "853206-P2" and details["parties"] == ["853206-P2"]
