"""The gate, check by check, on real emails through the real parser, analyser and policy.

The record: the spec's example case 853206 (Jane Smith confidential from Mark
Smith; Tom the child; Priya Shah, solicitor; Owen Price, social worker) and
case 853999 (Sarah Jones confidential; Dean Jones not to be contacted; the
same Priya Shah).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatekeeper.config import Settings
from gatekeeper.decision import Decision
from gatekeeper.gate import Gate
from gatekeeper.mail import item_from_email
from gatekeeper.policy import load_policy
from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases, import_staff
from tests.eml import eml
from tests.mailfiles import encrypted_pdf, text_pdf, word_file
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

JANE = "Jane Smith <jane.smith@example.net>"
MARK = "Mark Smith <m.smith77@example.com>"
PRIYA = "Priya Shah <p.shah@shahco-law.example>"
SARAH = "Sarah Jones <sarah.jones@example.org>"
SETTINGS = Settings(internal_domains=("gatekeeper.example",))


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    folder = tmp_path_factory.mktemp("gate")
    engine = open_store(f"sqlite:///{folder / 'gk.db'}")
    assert not import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in STAFF]).rejected
    return Gate.from_store(engine, SETTINGS)


def check(gate: Gate, raw: bytes) -> Decision:
    return gate.check(item_from_email(raw))


def fired(decision: Decision) -> list[str]:
    return [r.finding.check for r in decision.findings if r.severity.value != "info"]


def summary(decision: Decision, check_name: str) -> str:
    return next(r.finding.summary for r in decision.findings if r.finding.check == check_name)


CLEAN_BODY = (
    "Dear Jane,\n\nThank you for coming in on Tuesday. As discussed, the next contact session "
    "for Tom will be at the family centre on 14 March at 10am. Please let me know if that time "
    "does not suit.\n\nKind regards,\nAlice Jones\nFamily Court Adviser"
)


def test_ordinary_mail_to_the_right_party_is_released(gate: Gate) -> None:
    decision = check(gate, eml(to=[JANE], subject="853206 contact arrangements", body=CLEAN_BODY))
    assert decision.verdict.value == "release", decision.as_json()
    assert decision.case_ids == ("853206",)
    assert decision.recipients[0].party_id == "853206-P2"
    assert "853206-P1" in decision.data_subjects  # "Tom", in a message about his case


def test_letter_case_and_a_nickname_do_not_raise_holds(gate: Gate) -> None:
    body = CLEAN_BODY.replace("for Tom", "for Tommy Smith")
    decision = check(gate, eml(to=["JANE.SMITH@EXAMPLE.NET"], subject="Contact", body=body))
    assert decision.verdict.value == "release", decision.as_json()


def test_a_solicitor_in_two_cases_may_receive_mail_about_either(gate: Gate) -> None:
    for ref, child in (("853206", "Tom Smith"), ("LS12P34567", "Amy Jones")):
        body = f"Dear Priya,\n\nPlease find the update about {child} below.\n\nRegards,\nAlice"
        decision = check(gate, eml(to=[PRIYA], subject=f"Ref {ref}", body=body))
        assert decision.verdict.value == "release", decision.as_json()


def test_internal_mail_is_released_whatever_it_says(gate: Gate) -> None:
    body = (
        "Mark Smith's hair strand test was positive for cocaine; Jane lives at 14 Mill Lane LS6 2AB"
    )
    decision = check(
        gate, eml(to=["Bilal Khan <b.khan@gatekeeper.example>"], subject="853206", body=body)
    )
    assert decision.verdict.value == "release" and decision.findings == ()


def test_a_look_alike_address_is_held_naming_the_verified_one(gate: Gate) -> None:
    body = "Dear Mark,\n\nThe hearing about Tom Smith is listed for 3 April.\n\nAlice"
    decision = check(
        gate, eml(to=["Mark Smith <m.smith77@example.co>"], subject="853206", body=body)
    )
    assert decision.verdict.value == "hold"
    assert fired(decision)[0] == "recipient_lookalike"
    assert summary(decision, "recipient_lookalike") == (
        "m.smith77@example.co looks like m.smith77@example.com (Mark Smith, case 853206) but is not it"
    )
    assert decision.findings[0].finding.evidence["expected"] == "m.smith77@example.com"


def test_autocomplete_picking_a_party_of_another_case_is_held(gate: Gate) -> None:
    body = "Dear Jane,\n\nTom Smith's contact with his father will resume next week.\n\nAlice"
    decision = check(gate, eml(to=[SARAH], subject="Smith 853206 contact", body=body))
    assert decision.verdict.value == "hold"
    assert "recipient_other_case" in fired(decision)
    text = summary(decision, "recipient_other_case")
    assert text.startswith("sarah.jones@example.org is Sarah Jones (applicant, case 853999)")
    assert "jane.smith@example.net (Jane Smith)" in text


def test_a_display_name_naming_another_party_is_held(gate: Gate) -> None:
    raw = eml(to=["Jane Smith <m.smith77@example.com>"], subject="Update", body="Please see below.")
    decision = check(gate, raw)
    assert "display_name_mismatch" in fired(decision)
    assert "the record has jane.smith@example.net for Jane Smith" in summary(
        decision, "display_name_mismatch"
    )


def test_a_salutation_naming_another_party_is_held(gate: Gate) -> None:
    body = "Dear Jane,\n\nThe report for case 853206 is ready for collection.\n\nAlice"
    decision = check(gate, eml(to=[MARK], subject="Report", body=body))
    assert "display_name_mismatch" in fired(decision)
    assert "greets 'Jane'" in summary(decision, "display_name_mismatch")


def test_body_about_another_family_is_held(gate: Gate) -> None:
    body = (
        "Dear Jane,\n\nFurther to our call, Amy Jones will stay with Sarah Jones until the review."
        "\n\nAlice"
    )
    decision = check(gate, eml(to=[JANE], subject="853206 update", body=body))
    assert "content_other_case" in fired(decision)
    assert "case 853999" in summary(decision, "content_other_case")


def test_an_attachment_about_another_case_is_held(gate: Gate) -> None:
    report = text_pdf("Section 7 report\nCase LS12P34567\nChild: Amy Jones\nMother: Sarah Jones")
    raw = eml(
        to=[JANE],
        subject="853206 report",
        body="Dear Jane,\n\nPlease find the report attached.\n\nAlice",
        attachments=[("report.pdf", "application/pdf", report)],
    )
    decision = check(gate, raw)
    assert "attachment_other_case" in fired(decision)
    assert summary(decision, "attachment_other_case").startswith(
        "the attachment report.pdf is about case 853999"
    )


def test_a_confidential_address_to_the_party_it_is_withheld_from_is_blocked(gate: Gate) -> None:
    body = "Dear Mark,\n\nJane and Tom have moved to 14 Mill Lane, Leeds LS6 2AB.\n\nAlice"
    decision = check(gate, eml(to=[MARK], subject="853206", body=body))
    assert decision.verdict.value == "block"
    assert fired(decision)[0] == "confidential_address_leak"
    text = summary(decision, "confidential_address_leak")
    assert text.startswith("Jane Smith's confidential contact details are going to")
    assert "the postcode LS6 2AB in the body" in text


def test_a_confidential_address_in_an_attachment_is_blocked_too(gate: Gate) -> None:
    letter = word_file(["Jane Smith", "Flat 2", "14 Mill Lane", "Leeds LS6 2AB", "Dear Ms Smith"])
    raw = eml(
        to=[MARK],
        subject="853206 letters",
        body="Dear Mark,\n\nCopy attached.\n\nAlice",
        attachments=[
            (
                "copy.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                letter,
            )
        ],
    )
    assert check(gate, raw).verdict.value == "block"


def test_a_withheld_email_visible_in_cc_to_that_party_is_blocked(gate: Gate) -> None:
    raw = eml(
        to=[MARK],
        cc=[JANE],
        subject="853206 hearing",
        body="Dear both,\n\nThe hearing is on 3 April.",
    )
    decision = check(gate, raw)
    assert decision.verdict.value == "block"
    assert "the email address jane.smith@example.net in the To/Cc line" in summary(
        decision, "confidential_address_leak"
    )


def test_the_same_address_for_the_party_themself_is_fine(gate: Gate) -> None:
    body = "Dear Jane,\n\nWe will write to you at 14 Mill Lane, LS6 2AB.\n\nAlice"
    assert check(gate, eml(to=[JANE], subject="853206", body=body)).verdict.value == "release"


def test_recipients_of_several_households_visible_to_each_other_are_held(gate: Gate) -> None:
    body = "Dear parents,\n\nThe family centre will be closed next Friday for training.\n\nAlice"
    decision = check(
        gate,
        eml(to=[JANE, SARAH, "Pat Green <pat.green@example.com>"], subject="Closure", body=body),
    )
    assert "visible_recipients" in fired(decision)
    assert "put them in Bcc" in summary(decision, "visible_recipients")


def test_sensitive_content_to_an_unknown_address_is_held(gate: Gate) -> None:
    body = "Dear Jane,\n\nThe hair strand test for case 853206 came back positive for cannabis.\n\nAlice"
    decision = check(
        gate, eml(to=["jane.smith.home@elsewhere.example"], subject="Results", body=body)
    )
    assert fired(decision) == ["display_name_mismatch", "recipient_unknown"]  # "Dear Jane" too
    text = summary(decision, "recipient_unknown")
    assert "jane.smith.home@elsewhere.example is not in the record" in text
    assert "jane.smith@example.net (Jane Smith)" in text


def test_nothing_sensitive_to_an_unknown_address_is_released_and_noted(gate: Gate) -> None:
    decision = check(
        gate,
        eml(
            to=["info@venue.example"],
            subject="Room booking",
            body="Hello, is the room free on Monday?",
        ),
    )
    assert decision.verdict.value == "release"
    assert [r.finding.check for r in decision.findings] == ["recipient_unknown"]
    assert decision.findings[0].severity.value == "info"


def test_case_details_to_a_new_person_at_a_professionals_organisation_are_held(gate: Gate) -> None:
    body = "Dear Sam,\n\nCould you confirm the hearing date for case 853206?\n\nAlice"
    decision = check(gate, eml(to=["sam.lee@leeds.example.gov.uk"], subject="853206", body=body))
    assert decision.verdict.value == "hold"
    assert "though leeds.example.gov.uk is a professional party's organisation" in summary(
        decision, "recipient_unknown"
    )
    harmless = check(
        gate, eml(to=["sam.lee@leeds.example.gov.uk"], subject="Room", body="Is room 4 free?")
    )
    assert harmless.verdict.value == "release"


def test_a_party_not_to_be_contacted_directly_is_held(gate: Gate) -> None:
    body = "Dear Dean,\n\nThe next hearing is on 3 April.\n\nAlice"
    decision = check(
        gate, eml(to=["Dean Jones <dean.jones@example.org>"], subject="LS12P34567", body=body)
    )
    assert "contact_not_allowed" in fired(decision)
    assert "whose record says not to contact them directly" in summary(
        decision, "contact_not_allowed"
    )


def test_an_encrypted_pdf_is_held_with_the_reason(gate: Gate) -> None:
    raw = eml(
        to=[JANE],
        subject="853206",
        body="Dear Jane,\n\nAttached.",
        attachments=[("statement.pdf", "application/pdf", encrypted_pdf("secret"))],
    )
    decision = check(gate, raw)
    assert fired(decision) == ["unreadable_content"]
    assert summary(decision, "unreadable_content").startswith(
        "attachment statement.pdf: encrypted PDF"
    )


def test_monitor_only_releases_and_says_what_it_would_have_done(gate: Gate, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("monitor_only: true\n")
    watching = Gate(
        gate.index, load_policy(site), gate.analyzer, internal_domains=gate.internal_domains
    )
    decision = watching.check(
        item_from_email(eml(to=["m.smith77@example.co"], subject="853206", body="Hi"))
    )
    assert decision.verdict.value == "release"
    assert decision.as_json()["monitor_only"] == {"enforced_verdict": "hold"}


def test_a_new_address_saved_under_a_parents_name_is_held(gate: Gate) -> None:
    body = "Dear Mark,\n\nI will post the letter to you at 3 Oak Road as well.\n\nAlice"
    decision = check(
        gate, eml(to=["Mark Smith <marky1980@mailbox.example>"], subject="Letter", body=body)
    )
    assert "display_name_mismatch" in fired(decision)
    assert "the record has m.smith77@example.com for Mark Smith" in summary(
        decision, "display_name_mismatch"
    )


def test_a_partys_postcode_makes_mail_to_an_unknown_address_sensitive(gate: Gate) -> None:
    body = "Hello,\n\nThe visit will be at BD1 4QQ on Monday.\n\nAlice"
    decision = check(gate, eml(to=["someone@elsewhere.example"], subject="Visit", body=body))
    assert decision.verdict.value == "hold"
    assert summary(decision, "recipient_unknown").startswith(
        "someone@elsewhere.example is not in the record"
    )
