"""Incidents and events people enter: what the regulator's breach log asks for, the 72-hour
clock, and amendments that add a version and never overwrite or delete one."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from gatekeeper.register.clock import deadline_of, duration, regulator_clock
from gatekeeper.register.entries import entry_id_of, get_entry, versions_of
from gatekeeper.register.incidents import AmendConflict, RegisterError, amend_entry, record_entry
from gatekeeper.register.models import RegisterEntry, RegisterVersion
from gatekeeper.store.correspondence import AuditEvent
from tests.register_facts import GOVERNANCE, load_record

UTC = dt.UTC
# Friday 27 March 2026, 10:00 UTC: the clocks go forward on Sunday 29 March at 01:00 UTC.
DISCOVERED = dt.datetime(2026, 3, 27, 10, 0, tzinfo=UTC)
NOW = dt.datetime(2026, 3, 27, 12, 0, tzinfo=UTC)

INCIDENT = {
    "kind": "incident",
    "channel": "email",
    "cause": "autocomplete",
    "category": "IV",
    "team": "North",
    "summary": "A contact schedule for Tom Smith went to Sarah Jones (another family).",
    "occurred_at": DISCOVERED - dt.timedelta(hours=20),
    "discovered_at": DISCOVERED,
    "data_subjects": ["853206-P1", "853206-P2"],
    "data_kinds": ["safeguarding", "contact_details"],
    "consequences": "Jane Smith's new area could be inferred from the schedule.",
    "mitigation": "Recipient phoned, confirmed deletion in writing.",
    "reporter": "recipient (Sarah Jones), by phone",
    "reportable": True,
}


@pytest.fixture
def store(engine: Engine) -> Engine:
    load_record(engine)
    return engine


def test_the_deadline_is_72_hours_after_discovery_whatever_the_clocks_do() -> None:
    deadline = deadline_of(DISCOVERED)
    assert deadline == dt.datetime(2026, 3, 30, 10, 0, tzinfo=UTC)  # 11:00 BST on the Monday
    assert deadline - DISCOVERED == dt.timedelta(hours=72)


def test_the_clock_counts_down_and_marks_an_unreported_incident_overdue(store: Engine) -> None:
    with store.begin() as conn:
        entry = record_entry(conn, INCIDENT, actor=GOVERNANCE, now=NOW)
    deadline = DISCOVERED + dt.timedelta(hours=72)
    at_start = regulator_clock(entry, NOW)
    assert at_start is not None and at_start.deadline == deadline
    assert at_start.describe() == "70 h 0 min left" and not at_start.overdue
    last_minute = regulator_clock(entry, deadline - dt.timedelta(seconds=59))
    assert last_minute is not None and last_minute.describe() == "under 1 min left"
    on_time = regulator_clock(entry, deadline)
    assert on_time is not None and not on_time.overdue
    late = regulator_clock(entry, deadline + dt.timedelta(hours=3, minutes=5))
    assert late is not None and late.overdue
    assert late.describe() == "overdue by 3 h 5 min"
    days = regulator_clock(entry, deadline + dt.timedelta(days=4, hours=2))
    assert days is not None and days.describe() == "overdue by 4 d 2 h"


def test_a_reported_incident_says_whether_it_was_in_time(store: Engine) -> None:
    with store.begin() as conn:
        entry = record_entry(conn, INCIDENT, actor=GOVERNANCE, now=NOW)
        reported = amend_entry(
            conn,
            entry.id,
            {
                "reported": True,
                "reported_at": DISCOVERED + dt.timedelta(hours=74),
                "regulator_ref": "ICO-123",
            },
            actor=GOVERNANCE,
            note="reported to the ICO",
            now=DISCOVERED + dt.timedelta(hours=75),
        )
    clock = regulator_clock(reported, DISCOVERED + dt.timedelta(days=10))
    assert clock is not None and clock.overdue and clock.describe() == "reported 2 h 0 min late"


def test_only_a_reportable_incident_has_a_clock(store: Engine) -> None:
    with store.begin() as conn:
        quiet = record_entry(conn, {**INCIDENT, "reportable": False}, actor=GOVERNANCE, now=NOW)
        event = record_entry(
            conn, {**INCIDENT, "kind": "event", "reportable": False}, actor=GOVERNANCE, now=NOW
        )
    assert regulator_clock(quiet, NOW) is None
    assert regulator_clock(event, NOW) is None


def test_durations_read_at_a_glance() -> None:
    assert duration(dt.timedelta(seconds=30)) == "under 1 min"
    assert duration(dt.timedelta(minutes=5)) == "5 min"
    assert duration(dt.timedelta(hours=71, minutes=59)) == "71 h 59 min"
    assert duration(dt.timedelta(hours=75)) == "3 d 3 h"


def test_an_incident_holds_what_the_breach_log_asks_and_is_audited(store: Engine) -> None:
    with store.begin() as conn:
        entry = record_entry(conn, INCIDENT, actor=GOVERNANCE, now=NOW)
    assert entry.source_kind == "manual" and entry.version == 1
    assert entry.ref == f"R-{entry.id:05d}" and entry_id_of(entry.ref) == entry.id
    assert entry.people_affected == 2  # the data subjects named, unless more are given
    assert entry.data_kinds == ("safeguarding", "contact_details")
    assert (entry.recorded_by, entry.recorded_at) == (GOVERNANCE, NOW)
    with store.connect() as conn:
        [version] = versions_of(conn, entry.id)
        audited = conn.execute(
            select(AuditEvent.actor).where(AuditEvent.action == "register.recorded")
        ).scalars()
        assert list(audited) == [GOVERNANCE]
    assert version.fields["summary"] == INCIDENT["summary"]
    assert version.fields["discovered_at"] == DISCOVERED.isoformat()


def test_an_amendment_adds_a_version_and_keeps_every_earlier_one(store: Engine) -> None:
    with store.begin() as conn:
        entry = record_entry(conn, INCIDENT, actor=GOVERNANCE, now=NOW)
        amend_entry(
            conn,
            entry.id,
            {"category": "V", "people_affected": 4},
            actor="b.other@gatekeeper.example",
            note="two siblings named too",
            from_version=1,
            now=NOW + dt.timedelta(hours=1),
        )
        latest = amend_entry(
            conn,
            entry.id,
            {"category": "IV"},
            actor=GOVERNANCE,
            note="disclosure after all",
            from_version=2,
            now=NOW + dt.timedelta(hours=2),
        )
    assert (latest.version, latest.category, latest.people_affected) == (3, "IV", 4)
    with store.connect() as conn:
        history = versions_of(conn, entry.id)
    assert [v.version for v in history] == [1, 2, 3]
    assert [v.fields["category"] for v in history] == ["IV", "V", "IV"]
    assert history[1].changed == ("category", "people_affected")
    assert (history[1].actor, history[1].note) == (
        "b.other@gatekeeper.example",
        "two siblings named too",
    )


def test_the_database_refuses_to_rewrite_or_delete_history(store: Engine) -> None:
    with store.begin() as conn:
        entry = record_entry(conn, INCIDENT, actor=GOVERNANCE, now=NOW)
    attempts = [
        update(RegisterVersion).where(RegisterVersion.entry_id == entry.id).values(note="x"),
        delete(RegisterVersion).where(RegisterVersion.entry_id == entry.id),
        delete(RegisterEntry).where(RegisterEntry.id == entry.id),
    ]
    for statement in attempts:
        with pytest.raises(DBAPIError, match="amended, never deleted"), store.begin() as conn:
            conn.execute(statement)
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RegisterVersion)).scalar_one() == 1
        assert get_entry(conn, entry.id) == entry


def test_two_amendments_from_the_same_version_cannot_both_win(store: Engine) -> None:
    with store.begin() as conn:
        entry = record_entry(conn, INCIDENT, actor=GOVERNANCE, now=NOW)
        amend_entry(
            conn, entry.id, {"team": "South"}, actor=GOVERNANCE, note="moved", from_version=1
        )
    with pytest.raises(AmendConflict, match="reload it"), store.begin() as conn:
        amend_entry(conn, entry.id, {"team": "East"}, actor=GOVERNANCE, note="no", from_version=1)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"summary": " "}, "summary", "say what happened"),
        ({"discovered_at": NOW + dt.timedelta(days=1)}, "discovered_at", "in the future"),
        ({"occurred_at": DISCOVERED + dt.timedelta(hours=1)}, "occurred_at", "after it was"),
        ({"reported": True}, "reported_at", "when was it reported"),
        ({"kind": "event"}, "reportable", "only an incident"),
        ({"data_subjects": ["999-P9"]}, "data_subjects", "no party '999-P9'"),
        ({"item_ref": "NOSUCHREF"}, "item_ref", "no item with ref NOSUCHREF"),
        ({"cause": "gremlins"}, "cause", "choose one of"),
        ({"category": "VI"}, "category", "choose one of"),
        ({"people_affected": 1}, "people_affected", "at least as many"),
    ],
)
def test_an_entry_that_does_not_hold_together_is_refused_field_by_field(
    store: Engine, changes: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(RegisterError) as refused, store.begin() as conn:
        record_entry(conn, {**INCIDENT, **changes}, actor=GOVERNANCE, now=NOW)
    assert message in refused.value.problems[field]


def test_an_amendment_needs_a_reason_and_a_change(store: Engine) -> None:
    with store.begin() as conn:
        entry = record_entry(conn, INCIDENT, actor=GOVERNANCE, now=NOW)
    with pytest.raises(RegisterError, match="nothing changed"), store.begin() as conn:
        amend_entry(conn, entry.id, {"team": "North"}, actor=GOVERNANCE, note="same")
    with pytest.raises(RegisterError, match="say why"), store.begin() as conn:
        amend_entry(conn, entry.id, {"team": "South"}, actor=GOVERNANCE, note=" ")
