"""Every limit on what is read turns a hostile email into a hold with a one-line reason:
never a crash, never a release of what was not read, never unbounded memory.

The limits are `MailLimits` (gatekeeper/analysis/limits.py); each test goes over one
with a real file through the real parser, extraction and gate. The defaults are used
wherever going over them is cheap; `bench/bombs.py` measures time and memory.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gatekeeper.analysis.limits import MailLimits
from gatekeeper.config import Settings
from gatekeeper.decision import Decision, Verdict
from gatekeeper.gate import Gate
from gatekeeper.mail import item_from_email
from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases, import_staff
from tests import bombs
from tests import mailfiles as mf
from tests.conftest import REPO
from tests.eml import eml
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

JANE = "Jane Smith <jane.smith@example.net>"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BODY = "Dear Jane,\n\nThe papers for Tuesday are attached.\n\nAlice Jones"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    folder = tmp_path_factory.mktemp("gate-limits")
    engine = open_store(f"sqlite:///{folder / 'gk.db'}")
    assert not import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in STAFF]).rejected
    return Gate.from_store(engine, Settings(internal_domains=("gatekeeper.example",)))


def reasons(decision: Decision) -> list[str]:
    """What could not be read, as the held item's findings say it."""
    return [
        str(rated.finding.evidence["problem"])
        for rated in decision.findings
        if rated.finding.check == "unreadable_content"
    ]


def held(gate: Gate, raw: bytes, limits: MailLimits | None = None) -> list[str]:
    """The reasons a message to Jane is held for; it must be held, each reason one line."""
    item = item_from_email(raw, limits=limits) if limits else item_from_email(raw)
    decision = gate.check(item)
    assert decision.verdict is Verdict.HOLD, decision.findings
    found = reasons(decision)
    assert found and all("\n" not in reason for reason in found), found
    return found


def with_attachment(name: str, content_type: str, data: bytes) -> bytes:
    return eml(to=[JANE], subject="Papers", body=BODY, attachments=[(name, content_type, data)])


# -- nesting --------------------------------------------------------------------------------


def test_forwards_nested_past_the_depth_limit_are_held(gate: Gate) -> None:
    raw = bombs.nested_forwards(12)
    assert held(gate, raw) == [
        "the message is nested more than 8 levels deep: the rest of it was not read"
    ]


def test_multiparts_nested_past_the_depth_limit_are_held(gate: Gate) -> None:
    assert held(gate, bombs.nested_multiparts(40)) == [
        "the message is nested more than 8 levels deep: the rest of it was not read"
    ]


def test_a_thousand_parts_are_held_at_the_part_limit(gate: Gate) -> None:
    message = mf.email_message(BODY, to=JANE)
    for number in range(1000):
        message.add_attachment(f"note {number}", disposition="inline")
    assert held(gate, mf.as_bytes(message)) == [
        "the message has more than 500 parts: the rest of it was not read"
    ]


# -- counts and sizes -----------------------------------------------------------------------


def test_more_attachments_than_the_limit_are_held(gate: Gate) -> None:
    message = mf.email_message(BODY, to=JANE)
    for number in range(101):
        mf.attach(message, f"{number}.txt", b"Nothing of note.", "text/plain")
    assert held(gate, mf.as_bytes(message)) == [
        "the message has more than 100 attachments: the rest were not checked"
    ]


def test_a_message_over_the_size_limit_is_held_with_its_headers_read(gate: Gate) -> None:
    raw = with_attachment("notes.txt", "text/plain", b"Nothing of note.\n" * 1000)
    assert held(gate, raw, MailLimits(max_message_bytes=10 * 1024)) == [
        "the message is larger than 10 kB: only its headers were read"
    ]


def test_an_attachment_over_the_size_limit_is_held(gate: Gate) -> None:
    raw = with_attachment("report.pdf", "application/pdf", mf.text_pdf("Report " * 2000))
    assert held(gate, raw, MailLimits(max_attachment_bytes=1024)) == [
        "attachment larger than 1 kB: its content was not checked"
    ]


def test_text_past_the_text_limit_is_held(gate: Gate) -> None:
    raw = eml(to=[JANE], subject="Notes", body="Nothing of note. " * 10_000)
    assert held(gate, raw, MailLimits(max_text_chars=100_000)) == [
        "the message text is longer than 100,000 characters: the rest was not checked"
    ]


def test_a_body_of_one_word_longer_than_spacy_reads_gets_a_decision(gate: Gate) -> None:
    # Regression (fuzzer): the NER read windows counted in words, and one 1.2 M-character
    # word made a window past spaCy's max_length (E088): the gate raised.
    raw = eml(to=[JANE], subject="Notes", body="X" * 1_200_000)
    decision = gate.check(item_from_email(raw))
    assert decision.verdict in set(Verdict)


# -- archives -------------------------------------------------------------------------------


def test_a_docx_zip_bomb_is_held_unopened(gate: Gate) -> None:
    raw = with_attachment("plan.docx", DOCX, mf.word_file_with_filler(20 * bombs.MB))
    assert held(gate, raw) == [
        "DOCX is compressed suspiciously tightly (a zip bomb?): its content cannot be checked"
    ]


def test_a_docx_unpacking_past_the_limit_is_held_unopened(gate: Gate) -> None:
    raw = with_attachment("plan.docx", DOCX, mf.word_file_with_filler(110 * bombs.MB))
    assert held(gate, raw) == [
        "DOCX unpacks to more than 100 MB (a zip bomb?): its content cannot be checked"
    ]


def test_an_xlsx_bomb_is_held_and_never_unpacked(gate: Gate) -> None:
    raw = with_attachment("figures.xlsx", XLSX, bombs.xlsx_bomb(50 * bombs.MB))
    assert held(gate, raw) == [
        "Excel workbook (XLSX) attachment: its content cannot be read automatically"
    ]


def test_an_archive_of_more_files_than_the_limit_is_held_before_its_list_is_read(
    gate: Gate,
) -> None:
    raw = with_attachment("plan.docx", DOCX, bombs.zip_of_many_files(10_001))
    assert held(gate, raw) == [
        "archive holds more than 10,000 files (a zip bomb?): its content cannot be checked"
    ]


# -- PDFs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", bombs.PDF_BOMBS)
def test_a_pdf_unpacking_past_the_limit_is_held_unopened(gate: Gate, how: str) -> None:
    raw = with_attachment("report.pdf", "application/pdf", bombs.pdf_bomb(101 * bombs.MB, how))
    assert held(gate, raw) == [
        "PDF unpacks to more than 100 MB (a PDF bomb?): its content cannot be checked"
    ]


def test_a_pdf_of_a_million_pages_is_held_after_the_page_limit(gate: Gate) -> None:
    raw = with_attachment("report.pdf", "application/pdf", bombs.page_tree_pdf(6))
    assert held(gate, raw) == [
        "PDF has 1,000,000 pages, more than 500: only the first 500 were checked"
    ]


def test_a_pdf_read_past_its_time_limit_is_held(gate: Gate) -> None:
    raw = with_attachment("report.pdf", "application/pdf", mf.text_pdf("one", "two", "three"))
    assert held(gate, raw, MailLimits(max_pdf_seconds=0)) == [
        "PDF took more than 0 s to read (a PDF bomb?): only the first 1 of its 3 pages were checked"
    ]


def test_a_pdf_bomb_costs_no_more_memory_than_an_ordinary_pdf() -> None:
    # Opened unchecked, this 1 kB file makes PDFium hold a gigabyte of content stream.
    # The peak is /proc's VmHWM: getrusage's carries over exec from this (large) process.
    script = (
        "from pathlib import Path\n"
        "from gatekeeper.analysis.extract import extract_pdf_text\n"
        "from tests.bombs import pdf_bomb\n"
        "def peak():\n"
        "    status = Path('/proc/self/status').read_text().splitlines()\n"
        "    return next(int(l.split()[1]) for l in status if l.startswith('VmHWM:'))\n"
        "bomb = pdf_bomb(1024 ** 3, 'double')\n"
        "before = peak()\n"
        "print(extract_pdf_text(bomb)[1])\n"
        "print((peak() - before) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    problem, grown_mb = done.stdout.splitlines()
    assert problem.startswith("PDF unpacks to more than 100 MB")
    assert int(grown_mb) < 100, done.stdout
