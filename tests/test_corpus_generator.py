"""The evaluation corpus says what it contains: every label is true of its message and the record.

This tests the generator (`bench/correspondence.py`), not the checks: a corpus
whose "lookalike" items held no lookalike address would make the evaluation's
figures meaningless. Each mistake is verified from the message's own bytes and
the written case record, the way a second checker would see it.
"""

from __future__ import annotations

import email
import hashlib
import html
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import docx
import pypdf
import pytest
from rapidfuzz.distance import OSA, Levenshtein

from gatekeeper.casebook import effective_withheld_from, name_key
from gatekeeper.contact import email_key
from gatekeeper.record import CaseRecord, PartyRecord, parse_case_line, parse_staff_line
from gatekeeper.sample import INTERNAL_DOMAIN
from tests.conftest import REPO

GENERATOR = REPO / "bench" / "correspondence.py"
CLASSES = {
    "clean", "recipient_other_case", "recipient_lookalike", "display_name_mismatch",
    "content_other_case", "attachment_other_case", "confidential_address_leak",
    "visible_recipients", "recipient_unknown", "contact_not_allowed", "unreadable_content",
}  # fmt: skip
ARGS = ["--cases", "90", "--items-per-class", "6", "--clean-items", "40", "--seed", "7"]


def generate(out: Path, *extra: str) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out), *ARGS, *extra],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate(out)
    return out


# -- reading the corpus as a checker would ---------------------------------------------------------


@dataclass
class Record:
    cases: dict[str, CaseRecord]
    owners: dict[str, list[PartyRecord]]  # folded address -> parties with it
    case_of: dict[str, str]  # party_id -> case_id
    withheld: dict[str, frozenset[str]]  # party_id -> effective withheld_from
    addresses: list[str]

    @property
    def all_references(self) -> set[str]:
        return {ref for case in self.cases.values() for ref in (case.case_id, *case.aliases)}

    def references(self, case_id: str) -> set[str]:
        case = self.cases[case_id]
        return {case.case_id, *case.aliases}

    def names(self, case_id: str) -> set[str]:
        return {name_key(n) for p in self.cases[case_id].parties for n in (p.name, *p.other_names)}

    def owner_cases(self, address: str) -> set[str]:
        return {self.case_of[p.party_id] for p in self.owners.get(email_key(address), [])}

    def party(self, party_id: str) -> PartyRecord:
        case = self.cases[self.case_of[party_id]]
        return next(p for p in case.parties if p.party_id == party_id)


def load_record(path: Path) -> Record:
    cases: dict[str, CaseRecord] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = parse_case_line(line)  # raises on any line the importer would reject
        cases[record.case_id] = record
    owners: dict[str, list[PartyRecord]] = {}
    case_of: dict[str, str] = {}
    withheld: dict[str, frozenset[str]] = {}
    for case in cases.values():
        members = [(p.party_id, p.role, p.represents) for p in case.parties]
        for party in case.parties:
            case_of[party.party_id] = case.case_id
            withheld[party.party_id] = effective_withheld_from(
                party.party_id, party.confidential, party.withheld_from, members
            )
            for address in party.emails:
                owners.setdefault(email_key(address), []).append(party)
    return Record(cases, owners, case_of, withheld, sorted(owners))


@dataclass
class Mail:
    subject: str
    to: list[tuple[str, str]]  # (display name, address)
    cc: list[tuple[str, str]]
    bcc: list[tuple[str, str]]
    body: str = ""  # every text part, quoted history included, tags stripped
    attachments: dict[str, str | None] = field(
        default_factory=dict
    )  # name -> text, None: unreadable
    headers_text: str = ""

    @property
    def recipients(self) -> list[tuple[str, str]]:
        return self.to + self.cc + self.bcc

    @property
    def visible(self) -> list[str]:
        return [a for _, a in self.to + self.cc]

    @property
    def everything(self) -> str:
        texts = [self.subject, self.headers_text, self.body, *self.attachments.values()]
        return flat(" ".join(t for t in texts if t))


def flat(text: str) -> str:
    """Text with quote markers and line breaks folded away, so wrapped names read whole."""
    return re.sub(r"\s+", " ", re.sub(r"\n[ >]*", " ", text))


def strip_html(text: str) -> str:
    text = re.sub(r"(?is)<(style|head)\b.*?</\1>", " ", text)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def addresses(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    header = msg[name]
    if header is None:
        return []
    return [(a.display_name, a.addr_spec) for a in header.addresses]


def attachment_text(name: str, content_type: str, data: bytes) -> str | None:
    """The attachment's text, or None when a person could not read it either."""
    if content_type.startswith("image/"):
        return None
    try:
        if content_type == "application/pdf":
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                return None
            text = " ".join(page.extract_text() or "" for page in reader.pages)
            return text if text.strip() else None
        document = docx.Document(io.BytesIO(data))
    except Exception:
        return None
    cells = [c.text for t in document.tables for r in t.rows for c in r.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def read_mail(path: Path) -> Mail:
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["From"] and msg["Message-ID"] and msg["Date"], path
    mail = Mail(
        str(msg["Subject"]), addresses(msg, "To"), addresses(msg, "Cc"), addresses(msg, "Bcc")
    )
    bodies, headers = collect(msg, mail)
    mail.body = "\n".join(bodies)
    mail.headers_text = " ".join(headers)
    return mail


def collect(msg: EmailMessage, mail: Mail) -> tuple[list[str], list[str]]:
    bodies: list[str] = []
    headers = [str(msg[h]) for h in ("To", "Cc") if msg[h]]
    for part in msg.walk():
        assert isinstance(part, EmailMessage)
        ctype = part.get_content_type()
        if part.get_content_maintype() == "multipart" or ctype == "message/rfc822":
            if ctype == "message/rfc822":
                inner = part.get_content()
                headers += [str(inner[h]) for h in ("From", "To", "Cc") if inner[h]]
            continue
        if part.is_attachment():
            data = part.get_content()
            assert isinstance(data, bytes)
            mail.attachments[part.get_filename() or "?"] = attachment_text(
                part.get_filename() or "", ctype, data
            )
        elif ctype == "text/plain":
            bodies.append(part.get_content())
        elif ctype == "text/html":
            bodies.append(strip_html(part.get_content()))
    return bodies, headers


@dataclass
class Corpus:
    root: Path
    record: Record
    labels: list[dict[str, Any]]

    def items(self, cls: str) -> Iterator[tuple[dict[str, Any], Mail]]:
        for label in self.labels:
            if label["class"] == cls:
                yield label, read_mail(self.root / label["file"])


@pytest.fixture(scope="module")
def world(corpus: Path) -> Corpus:
    labels = [json.loads(line) for line in (corpus / "labels.jsonl").read_text().splitlines()]
    return Corpus(corpus, load_record(corpus / "cases.jsonl"), labels)


def is_internal(address: str) -> bool:
    return address.rpartition("@")[2].lower() == INTERNAL_DOMAIN


def salutation(mail: Mail) -> str:
    return next((line for line in mail.body.splitlines() if line.strip()), "")


def identifies(record: Record, case_id: str, evidence: list[str], text: str) -> None:
    """Each evidence string is in the text and is this case's reference or a party's name."""
    assert evidence, "no evidence of which case the item is about"
    for item in evidence:
        assert item in text, f"{item!r} is not in the message"
        assert item in record.references(case_id) or name_key(item) in record.names(case_id), (
            f"{item!r} neither names case {case_id} nor one of its parties"
        )


# -- the corpus as a whole -------------------------------------------------------------------------


def test_every_file_is_written_and_labelled(world: Corpus) -> None:
    assert {label["class"] for label in world.labels} == CLASSES
    for label in world.labels:
        assert (world.root / label["file"]).is_file()
        assert label["expect"] == {"clean": "release", "confidential_address_leak": "block"}.get(
            label["class"], "hold"
        )
        assert label["why"] and is_internal(label["sender"])
    files = sorted(p.relative_to(world.root).as_posix() for p in world.root.glob("mail/*/*.eml"))
    assert files == sorted(label["file"] for label in world.labels)


def test_record_and_staff_lines_are_valid(corpus: Path) -> None:
    staff = [parse_staff_line(line) for line in (corpus / "staff.jsonl").read_text().splitlines()]
    assert all(is_internal(s.email) for s in staff)
    record = load_record(corpus / "cases.jsonl")
    parties = [p for c in record.cases.values() for p in c.parties]
    # What the checks need and the sample record alone lacks.
    assert any(p.role == "child" and p.emails and not p.contact_allowed for p in parties)
    assert any(p.role == "respondent" and p.emails and not p.contact_allowed for p in parties)
    assert any(p.confidential and not p.withheld_from for p in parties)  # the implicit rule


def test_the_same_seed_writes_the_same_corpus(corpus: Path, tmp_path: Path) -> None:
    generate(tmp_path, "--jobs", "2")  # and several processes write what one does

    def digest(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digest(tmp_path) == digest(corpus)


def test_mail_has_the_variety_of_real_mail(world: Corpus) -> None:
    kinds: set[str] = set()
    for label in world.labels:
        raw = (world.root / label["file"]).read_bytes()
        msg = email.message_from_bytes(raw, policy=policy.default)
        kinds.add(msg.get_content_type())
        kinds |= {p.get_content_type() for p in msg.walk()}
        text = raw.decode("ascii", "replace")
        if "wrote:" in text:
            kinds.add("gmail quote")
        if "Sent: " in text:
            kinds.add("outlook quote")
        if re.match(r"(?i)(fwd?|fw):", str(msg["Subject"])):
            kinds.add("forward")
    expected = {
        "text/plain", "text/html", "multipart/alternative", "multipart/mixed", "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "gmail quote", "outlook quote", "forward",
    }  # fmt: skip
    assert expected <= kinds


# -- clean items are clean -----------------------------------------------------------------------


def test_clean_items_go_only_where_the_record_allows(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("clean"):
        case_id = label["case_id"]
        external = [a for _, a in mail.recipients if not is_internal(a)]
        for address in external:
            owners = record.owners.get(email_key(address), [])
            if label["variant"] == "new_professional_no_personal_data":
                assert not owners
                continue
            assert owners, f"{label['file']}: {address} is in no case"
            assert all(p.contact_allowed for p in owners), label["file"]
            if case_id:
                assert case_id in record.owner_cases(address), label["file"]
            if label["variant"] == "solicitor_two_cases_one_mail":
                assert label["other_case_id"] in record.owner_cases(address)
        if label["variant"] == "circular_bcc":
            assert all(is_internal(a) for a in mail.visible), label["file"]
            assert len(record_cases(record, [a for _, a in mail.bcc])) == len(mail.bcc)
        if case_id:
            assert_no_leak(record, case_id, mail, label["file"])
            about = {case_id, label["other_case_id"]} - {None}
            assert_no_other_reference(record, about, mail, label["file"])
        assert all(text is not None for text in mail.attachments.values()), label["file"]


def record_cases(record: Record, addresses: list[str]) -> set[str]:
    return {c for a in addresses for c in record.owner_cases(a)}


def assert_no_leak(record: Record, case_id: str, mail: Mail, where: str) -> None:
    recipients = {
        p.party_id for _, a in mail.recipients for p in record.owners.get(email_key(a), [])
    }
    text = mail.everything
    for party in record.cases[case_id].parties:
        if not record.withheld[party.party_id] & recipients:
            continue
        details = [*party.emails, *(a.postcode for a in party.postal_addresses)]
        for detail in details:
            assert detail.casefold() not in text.casefold(), f"{where}: {detail} leaks"


def assert_no_other_reference(record: Record, about: set[str], mail: Mail, where: str) -> None:
    """No reference to a case outside `about` (the labelled case, and a second where legitimate)."""
    allowed = set().union(*(record.references(c) for c in about))
    others = set(re.findall(r"\w+", mail.everything)) & record.all_references - allowed
    assert not others, f"{where}: {others}"


# -- each mistake is there --------------------------------------------------------------------------


def test_recipient_other_case(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("recipient_other_case"):
        target, a, b = label["target"], label["case_id"], label["other_case_id"]
        assert target in [addr for _, addr in mail.recipients]
        assert b in record.owner_cases(target) and a not in record.owner_cases(target)
        identifies(record, a, label["evidence"], flat(mail.subject + " " + mail.body))


def test_recipient_lookalike(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("recipient_lookalike"):
        target = label["target"]
        assert target in [addr for _, addr in mail.recipients]
        assert email_key(target) not in record.owners, f"{target} is a verified address"
        intended = record.party(label["party_id"])
        distance = min(OSA.distance(email_key(target), email_key(e)) for e in intended.emails)
        assert 1 <= distance <= 2, (target, intended.emails)


def test_display_name_mismatch(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("display_name_mismatch"):
        named = record.party(label["party_id"])
        display = dict((a, n) for n, a in mail.recipients)[label["target"]]
        assert email_key(label["target"]) not in {email_key(e) for e in named.emails}
        greeting = salutation(mail)
        by_display = name_key(display) == name_key(named.name)
        by_salutation = named.name.split()[0] in greeting or named.name.split()[-1] in greeting
        assert by_display or by_salutation, (label["file"], display, greeting)
        if not by_display:  # the display name, if any, is the actual owner's
            owners = record.owners.get(email_key(label["target"]), [])
            assert named.party_id not in {p.party_id for p in owners}


def test_content_other_case(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("content_other_case"):
        a, b = label["case_id"], label["other_case_id"]
        assert a != b
        addresses = [addr for _, addr in mail.recipients]
        assert all(a in record.owner_cases(x) for x in addresses), label["file"]
        assert not any(b in record.owner_cases(x) for x in addresses), label["file"]
        new_text = flat(mail.subject + " " + mail.body)
        identifies(record, b, label["evidence"], new_text)
        assert not {name_key(e) for e in label["evidence"]} & record.names(a)


def test_attachment_other_case(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("attachment_other_case"):
        a, b = label["case_id"], label["other_case_id"]
        addresses = [addr for _, addr in mail.recipients]
        assert all(a in record.owner_cases(x) for x in addresses), label["file"]
        assert not any(b in record.owner_cases(x) for x in addresses), label["file"]
        text = mail.attachments[label["target"]]
        assert text is not None, label["file"]
        identifies(record, b, label["evidence"], flat(text))
        for ref in record.references(b):
            assert ref not in flat(mail.subject + " " + mail.body) or ref in label["target"]


def test_confidential_address_leak(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("confidential_address_leak"):
        confidential = record.party(label["party_id"])
        assert confidential.confidential
        receivers = record.owners[email_key(label["target"])]
        assert label["target"] in mail.visible
        assert any(r.party_id in record.withheld[confidential.party_id] for r in receivers)
        details = {*confidential.emails}
        for postal in confidential.postal_addresses:
            details |= {postal.postcode, *postal.lines}
        assert label["evidence"] and set(label["evidence"]) <= details, label["evidence"]
        for detail in label["evidence"]:
            assert detail in mail.everything, (label["file"], detail)


def test_visible_recipients(world: Corpus) -> None:
    record = world.record
    for _label, mail in world.items("visible_recipients"):
        external = [a for a in mail.visible if not is_internal(a)]
        assert len(external) >= 2
        cases = [record.owner_cases(a) for a in external]
        assert all(len(c) == 1 for c in cases)
        assert len(set().union(*cases)) == len(external), "one household per case"
        roles = {p.role for a in external for p in record.owners[email_key(a)]}
        assert roles <= {"applicant", "respondent", "carer", "parent"}


def test_recipient_unknown(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("recipient_unknown"):
        target = label["target"]
        assert target in [addr for _, addr in mail.recipients] and not is_internal(target)
        assert email_key(target) not in record.owners
        closest = min(Levenshtein.distance(email_key(target), a) for a in record.addresses)
        assert closest > 2, f"{target} is within two edits of a verified address"
        identifies(
            record, label["case_id"], label["evidence"], flat(mail.subject + " " + mail.body)
        )


def test_contact_not_allowed(world: Corpus) -> None:
    record = world.record
    for label, mail in world.items("contact_not_allowed"):
        assert label["target"] in [addr for _, addr in mail.recipients]
        party = record.party(label["party_id"])
        assert not party.contact_allowed
        assert email_key(label["target"]) in {email_key(e) for e in party.emails}


def test_unreadable_content(world: Corpus) -> None:
    for label, mail in world.items("unreadable_content"):
        assert mail.attachments[label["target"]] is None, label["file"]
