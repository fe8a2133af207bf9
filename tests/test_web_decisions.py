"""Deciding in the browser, as checkers and senders would notice it: the checklist before
approval, fresh eyes, exactly one decision, returns with a note, corrections to the record's
address, fast approvals flagged, the sender's own view, and the audit trail of it all."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from gatekeeper.quarantine import Quarantine
from gatekeeper.store.approval import HeldItemFlag
from gatekeeper.store.correspondence import AuditEvent, HumanDecision, Item, ItemContent
from gatekeeper.store.sealed import open_content
from tests.letters import letter_pdf
from tests.web_world import (
    WebWorld,
    csrf_of,
    lookalike_of,
    message,
    shared_fixtures,
    web_world,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def world(engine: Engine) -> Iterator[WebWorld]:
    yield from web_world(engine, shared_fixtures())


def findings_of(world: WebWorld, ref: str) -> list[dict[str, Any]]:
    return list(world.item(ref).findings)


def decide(world: WebWorld, client: Any, ref: str, what: str, **data: Any) -> Any:
    page = client.get(f"/items/{ref}")
    assert page.status_code == 200, page.text
    return client.post(f"/items/{ref}/{what}", data={"csrf": csrf_of(page.text), **data})


def every_finding(world: WebWorld, ref: str) -> list[str]:
    return [str(i) for i in range(len(findings_of(world, ref)))]


def decision(world: WebWorld, ref: str) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(
            select(HumanDecision).where(HumanDecision.item_id == world.item(ref).id)
        ).one()


def test_a_checker_confirms_every_finding_then_approves_and_it_leaves_as_written(
    world: WebWorld,
) -> None:
    ref = world.hold_lookalike()
    assert len(findings_of(world, ref)) >= 2  # the look-alike, and the greeting's name
    checker = world.client(world.checker)
    page = checker.get(f"/items/{ref}")
    assert page.text.count('name="confirm"') == len(findings_of(world, ref))
    assert "<mark" in page.text  # the look-alike's differing characters

    partly = decide(world, checker, ref, "approve", confirm=["0"])
    assert partly.status_code == 400
    assert f"confirm each finding before releasing {ref}" in partly.text
    assert world.item(ref).state == "held" and world.outbound(ref) == []

    done = decide(world, checker, ref, "approve", confirm=every_finding(world, ref), note="ok")
    assert (
        done.status_code == 303 and done.headers["location"] == f"/queue?done={ref}&action=approved"
    )
    item = world.item(ref)
    assert item.state == "approved"
    rows = world.outbound(ref)
    assert [(r.kind, r.recipient, r.raw) for r in rows] == [
        ("item", item.envelope["rcpt_to"][0], None)
    ]
    made = decision(world, ref)
    assert made.actor == world.checker.email and made.action == "approve"
    assert made.confirmed_findings == [f["check"] for f in findings_of(world, ref)]
    assert made.seconds_open is not None and made.seconds_open >= 0
    approved = world.audit("held.approve")
    assert approved[0].remote == "testclient" and approved[0].details["confirmed"]
    viewed = [e for e in world.audit("held.viewed") if e.item_id == item.id]
    assert viewed and {e.actor for e in viewed} == {world.checker.email}
    assert checker.get("/queue").text.count(f'href="/items/{ref}"') == 0


def test_the_sender_never_approves_their_own_item_and_non_checkers_never_decide(
    world: WebWorld,
) -> None:
    ref = world.hold_lookalike(sender=world.checker2)  # a checker who sent it
    own = world.client(world.checker2)
    page = own.get(f"/items/{ref}")
    assert "the second check must be someone else" in page.text
    assert 'name="confirm"' not in page.text  # no decision forms on one's own item
    refused = own.post(
        f"/items/{ref}/approve",
        data={"csrf": csrf_of(page.text), "confirm": every_finding(world, ref)},
    )
    assert refused.status_code == 403
    assert "the second check must be someone else's" in refused.text
    governance = world.client(world.governance)
    shown = governance.get(f"/items/{ref}")
    assert shown.status_code == 200 and "needs the checker role" in shown.text
    assert (
        governance.post(
            f"/items/{ref}/approve", data={"csrf": csrf_of(shown.text), "confirm": ["0", "1"]}
        ).status_code
        == 403
    )
    assert world.item(ref).state == "held" and world.outbound(ref) == []


def test_two_checkers_approving_at_once_exactly_one_wins(world: WebWorld) -> None:
    ref = world.hold_lookalike()
    confirm = every_finding(world, ref)
    browsers = []
    for person in (world.checker, world.checker2):
        client = world.client(person)
        browsers.append((client, csrf_of(client.get(f"/items/{ref}").text)))
    start = threading.Barrier(2)
    statuses: list[int] = []

    def click(client: Any, token: str) -> None:
        start.wait()
        response = client.post(f"/items/{ref}/approve", data={"csrf": token, "confirm": confirm})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=click, args=b) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(statuses) == [303, 409]
    assert [r.kind for r in world.outbound(ref)] == ["item"]
    with world.engine.connect() as conn:
        decided = conn.execute(
            select(HumanDecision).where(HumanDecision.item_id == world.item(ref).id)
        ).all()
    assert len(decided) == 1
    late = decide(world, browsers[0][0], ref, "approve", confirm=confirm)
    assert late.status_code == 409 and f"{ref} was already decided: approve by" in late.text


def test_returning_needs_a_note_and_the_sender_gets_it(world: WebWorld) -> None:
    ref = world.hold_lookalike()
    checker = world.client(world.checker)
    silent = decide(world, checker, ref, "return")
    assert silent.status_code == 400 and "Write a note for the sender" in silent.text
    note = "Wrong address: use the one on the record for Jordan."
    returned = decide(world, checker, ref, "return", note=note, confirm=["0"])
    assert returned.status_code == 303
    assert world.item(ref).state == "returned"
    [notice] = world.outbound(ref)
    assert (notice.kind, notice.mail_from, notice.recipient) == ("notice", "", world.sender.email)
    assert b"Returned by a checker" in notice.raw and b"Wrong address" in notice.raw
    assert decision(world, ref).confirmed_findings == [findings_of(world, ref)[0]["check"]]


def test_correcting_sends_to_the_records_address_with_the_bytes_unchanged(
    world: WebWorld,
) -> None:
    party = world.record.lay_party(2)
    verified = party["emails"][0]
    wrong = lookalike_of(verified)
    raw = message(world.sender.email, wrong, "Contact", "Hello,\n\nArrangements attached.\n")
    ref = world.hold(raw, world.sender, [wrong])
    checker = world.client(world.checker)
    page = checker.get(f"/items/{ref}")
    assert f'<option value="{verified}" selected>' in page.text
    token = csrf_of(page.text)
    confirm = every_finding(world, ref)
    sneaky = checker.post(
        f"/items/{ref}/correct",
        data={"csrf": token, "confirm": confirm, "replace": wrong, "with": "thief@example.org"},
    )
    assert sneaky.status_code == 400 and "is not an address the record has" in sneaky.text
    corrected = checker.post(
        f"/items/{ref}/correct",
        data={"csrf": token, "confirm": confirm, "replace": wrong, "with": verified},
    )
    assert corrected.status_code == 303, corrected.text
    assert world.item(ref).state == "corrected"
    rows = world.outbound(ref)
    assert [(r.kind, r.recipient) for r in rows] == [
        ("item", verified),
        ("notice", world.sender.email),
    ]
    assert rows[0].raw is None  # the item's own stored bytes leave, as written
    item_id = world.item(ref).id
    with world.engine.connect() as conn:
        stored = conn.execute(
            select(ItemContent.raw, ItemContent.key_id).where(ItemContent.item_id == item_id)
        ).one()
    assert open_content(Quarantine.of(world.engine), item_id, stored.key_id, stored.raw) == raw
    assert decision(world, ref).corrected_recipients == [{"from": wrong, "to": verified}]
    told = message_from_bytes(rows[1].raw).get_payload(decode=True).decode()
    assert f"{verified} instead of {wrong}" in " ".join(told.split())


def test_an_approval_faster_than_the_policy_minimum_is_flagged(world: WebWorld) -> None:
    quick, slow = world.hold_lookalike(), world.hold_lookalike(skip=1)
    checker = world.client(world.checker)
    assert (
        decide(world, checker, quick, "approve", confirm=every_finding(world, quick)).status_code
        == 303
    )
    page = checker.get(f"/items/{slow}")
    with world.engine.begin() as conn:  # opened a minute ago, not just now
        conn.execute(
            update(AuditEvent)
            .where(AuditEvent.item_id == world.item(slow).id, AuditEvent.action == "held.viewed")
            .values(at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    approved = checker.post(
        f"/items/{slow}/approve",
        data={"csrf": csrf_of(page.text), "confirm": every_finding(world, slow)},
    )
    assert approved.status_code == 303
    with world.engine.connect() as conn:
        flagged = {
            (row.item_id, row.flag)
            for row in conn.execute(select(HeldItemFlag.item_id, HeldItemFlag.flag))
        }
    assert flagged == {(world.item(quick).id, "fast_decision")}
    assert decision(world, slow).seconds_open >= 60
    governance = world.client(world.governance)
    table = governance.get("/governance/canaries").text
    assert world.checker.email in table


def test_the_sender_sees_why_withdraws_and_sees_the_decision(world: WebWorld) -> None:
    kept, taken_back = world.hold_lookalike(), world.hold_lookalike(skip=1)
    sender = world.client(world.sender)
    mine = sender.get("/mine")
    assert mine.status_code == 200
    assert kept in mine.text and taken_back in mine.text and "looks like" in mine.text
    other = world.client(world.colleague)
    stolen = other.post(
        f"/mine/{taken_back}/withdraw", data={"csrf": csrf_of(other.get("/mine").text)}
    )
    assert stolen.status_code == 400 and "you have no item with ref" in stolen.text
    assert world.item(taken_back).state == "held"
    withdrawn = sender.post(f"/mine/{taken_back}/withdraw", data={"csrf": csrf_of(mine.text)})
    assert withdrawn.status_code == 303
    assert world.item(taken_back).state == "withdrawn" and world.outbound(taken_back) == []
    checker = world.client(world.checker)
    decide(world, checker, kept, "return", note="Please check the address.")
    after = sender.get("/mine").text
    assert f"Returned by {world.checker.email}" in after and "Please check the address." in after
    assert "You withdrew it" in after
    assert world.audit("web.mine_viewed")


def test_every_view_and_decision_is_in_the_audit_trail_for_governance(world: WebWorld) -> None:
    ref = world.hold_lookalike()
    checker = world.client(world.checker)
    checker.get("/queue")
    decide(world, checker, ref, "return", note="no")
    governance = world.client(world.governance)
    page = governance.get(f"/governance/audit?ref={ref}")
    assert page.status_code == 200
    for action in ("held.viewed", "held.return"):
        assert f"<code>{action}</code>" in page.text
    everything = governance.get("/governance/audit").text
    assert "web.queue_viewed" in everything and "web.login" in everything
    with world.engine.connect() as conn:
        actions = set(conn.execute(select(AuditEvent.action)).scalars())
    assert {"web.login", "web.queue_viewed", "held.viewed", "held.return",
            "web.audit_viewed"} <= actions  # fmt: skip


def test_the_item_page_shows_attachments_text_and_the_records_confidential_contacts(
    world: WebWorld,
) -> None:
    case = next(c for c in world.record.cases if any(p.get("confidential") for p in c["parties"]))
    hidden = next(p for p in case["parties"] if p.get("confidential"))
    reader = next(p for p in case["parties"] if p["party_id"] in hidden["withheld_from"])
    wrong = lookalike_of(reader["emails"][0])
    email = EmailMessage(policy=SMTP)
    email["From"], email["To"], email["Subject"] = world.sender.email, wrong, "Report"
    email.set_content("Hello,\n\nThe report is attached.\n")
    email.add_attachment(
        f"Report on case {case['case_id']}: contact went well.".encode(),
        maintype="text", subtype="plain", filename="report.txt",
    )  # fmt: skip
    ref = world.hold(email.as_bytes(), world.sender, [wrong])
    page = world.client(world.checker).get(f"/items/{ref}").text
    assert "report.txt" in page and "contact went well." in page
    assert f"Confidential: withheld from {reader['name']}" in page
    assert hidden["name"] in page


def test_a_held_letter_is_shown_as_its_text_and_is_never_corrected(world: WebWorld) -> None:
    pdf = letter_pdf()
    with world.engine.begin() as conn:
        item_id = conn.execute(
            insert(Item).returning(Item.id),
            {
                "ref": "LETTER01", "channel": "post", "sender": world.sender.email,
                "team": world.sender.team, "subject": "Letter to Mr Smith", "envelope": {},
                "recipients": [], "case_ids": [], "data_subjects": [], "verdict": "hold",
                "findings": [{"check": "postal_address_mismatch", "severity": "hold",
                              "summary": "the address is not the record's", "evidence": {}}],
                "state": "held", "monitor_only": False, "size": len(pdf), "sha256": "0" * 64,
            },
        ).scalar_one()  # fmt: skip
        conn.execute(insert(ItemContent), {"item_id": item_id, "raw": pdf})
    page = world.client(world.checker).get("/items/LETTER01").text
    assert "Thank you for attending the meeting" in page
    assert "Correct the recipient" not in page and "Return to the sender" in page
