"""Letters from `lp` through the gate to the printer, or to the approval queue and back.

Real peers: a private `cupsd -f`, a queue made with `lpadmin` whose device
URI wraps an AppSocket printer's (`gatekeeper:socket://127.0.0.1:PORT`), the
backend installed by `gatekeeper post install-backend`, the letters service
run as `gatekeeper post serve`, and real PDFs printed with `lp`. What reaches
the printer is rendered with `pdftoppm` and its codes read with zxing-cpp.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import Engine, select

from gatekeeper.config import Settings
from gatekeeper.held import HeldQueue
from gatekeeper.post.pagecode import PageCode
from gatekeeper.store import open_store
from gatekeeper.store.correspondence import AuditEvent, Item
from gatekeeper.store.importer import import_cases, import_staff
from gatekeeper.store.letters import Letter
from tests.conftest import need_program, run_gatekeeper
from tests.cups_peers import CupsServer, LettersServiceProcess, SocketPrinter, free_port, wait_for
from tests.letters import JANE, MARK, POSTSCRIPT_JOB, letter_pdf
from tests.mailfiles import encrypted_pdf, scanned_pdf, truncated_pdf
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

pytestmark = pytest.mark.slow

CHECKER = "b.khan@gatekeeper.example"
FINAL = {"completed", "canceled", "aborted", "pending-held"}


@dataclass
class PrintRoom:
    cups: CupsServer
    printer: SocketPrinter
    service: LettersServiceProcess
    engine: Engine
    db: str
    env: dict[str, str]
    folder: Path

    def print_letter(self, pdf: bytes, name: str) -> int:
        path = self.folder / name
        path.write_bytes(pdf)
        return self.cups.print_file("letters", path, title=name)

    def outcomes(self, job_id: int) -> list[str]:
        """What the letters service decided each time CUPS ran the job, from its JSON log."""
        lines = [json.loads(line) for line in self.service.log_path.read_text().splitlines()]
        return [
            line["outcome"]
            for line in lines
            if line.get("msg") == "decided" and line.get("job") == job_id
        ]

    def item_of_job(self, job_id: int) -> tuple[str, str]:
        """(ref, state) of the item the job became."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Item.ref, Item.state)
                .join(Letter, Letter.item_id == Item.id)
                .where(Letter.print_job == job_id)
                .order_by(Item.id.desc())
            ).first()
        assert row is not None, f"job {job_id} was never stored"
        return row.ref, row.state


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrintRoom]:
    for program in ("cupsd", "lpadmin", "lp", "lpstat", "ipptool", "pdftoppm"):
        need_program(program)
    folder = tmp_path_factory.mktemp("printroom")
    db = f"sqlite:///{folder / 'gk.db'}"
    engine = open_store(db)
    assert not import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in STAFF]).rejected
    env = {
        "GATEKEEPER_LETTERS_PORT": str(free_port()),
        "GATEKEEPER_INTERNAL_DOMAINS": "gatekeeper.example",
        "GATEKEEPER_RECORD_REFRESH_SECONDS": "0",
    }
    service = LettersServiceProcess(db, env, folder / "service.log")
    cups = printer = None
    try:
        cups = CupsServer(env)
        printer = SocketPrinter()
        cups.add_queue("letters", f"gatekeeper:{printer.uri}")
        yield PrintRoom(cups, printer, service, engine, db, env, folder)
    finally:
        service.close()
        if cups is not None:
            cups.close()
        if printer is not None:
            printer.close()
        engine.dispose()


def codes_on(pdf: bytes) -> list[str]:
    """The QR codes on each page of a PDF, as a scanner would read the printed sheets."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "printed.pdf"
        source.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", "150", "-gray", "-png", str(source), str(Path(folder) / "page")],
            check=True,
            capture_output=True,
        )
        found = []
        for page in sorted(Path(folder).glob("page*.png")):
            texts = [b.text for b in zxingcpp.read_barcodes(Image.open(page))]
            found.append(texts[0] if len(texts) == 1 else f"{len(texts)} codes")
        return found


def test_a_correct_letter_prints_with_a_code_on_every_page(room: PrintRoom) -> None:
    before = len(room.printer.received())
    job = room.print_letter(letter_pdf(MARK, pages=3), "hearing-date.pdf")
    attributes = room.cups.wait_job(job, FINAL)
    assert attributes["job-state"] == "completed", attributes
    wait_for(lambda: len(room.printer.received()) == before + 1, 30, "the printer to get the job")
    printed = room.printer.received()[-1]
    assert printed.startswith(b"%PDF-")
    ref, _ = room.item_of_job(job)
    codes = [PageCode.parse(text) for text in codes_on(printed)]
    assert codes == [PageCode(ref, n, 3, "853206-P3") for n in (1, 2, 3)]
    wait_for(lambda: room.item_of_job(job)[1] == "printed", 30, "the item to be printed")


def test_a_letter_whose_address_differs_is_held_by_cups_then_prints_once_approved(
    room: PrintRoom,
) -> None:
    before = len(room.printer.received())
    moved = ("Mr Mark Smith", "27 Elm Street", "York YO1 7HH")
    job = room.print_letter(letter_pdf(moved), "moved.pdf")
    attributes = room.cups.wait_job(job, FINAL)
    assert attributes["job-state"] == "pending-held", attributes
    ref, state = room.item_of_job(job)
    assert state == "held"
    assert f"ref {ref}" in attributes["job-printer-state-message"]
    assert "address differs" in attributes["job-printer-state-message"]
    listed = run_gatekeeper("held", "list", "--json", db=room.db, env=room.env)
    held = {json.loads(line)["ref"]: json.loads(line) for line in listed.stdout.splitlines()}
    summary = held[ref]["findings"][0]["summary"]
    assert held[ref]["findings"][0]["check"] == "postal_address_mismatch"
    assert "the record has 3 Oak Road, Bradford BD1 4QQ for Mark Smith" in summary
    # Released by hand in CUPS without approval: the gate answers from the record and holds it.
    room.cups.run("lp", "-i", str(job), "-H", "resume")
    wait_for(lambda: room.outcomes(job) == ["held", "still_held"], 60, "the job's second run")
    assert room.cups.wait_job(job, FINAL)["job-state"] == "pending-held"
    assert len(room.printer.received()) == before

    approved = run_gatekeeper(
        "held", "approve", ref, "--as", CHECKER, "--note", "he moved last week", db=room.db,
        env=room.env,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert "prints now" in approved.stdout
    assert room.cups.wait_job(job, {"completed", "canceled", "aborted"})["job-state"] == "completed"
    wait_for(lambda: len(room.printer.received()) == before + 1, 30, "the approved letter")
    assert codes_on(room.printer.received()[-1]) == [f"GK1:{ref}:1/1:-"]
    wait_for(lambda: room.item_of_job(job)[1] == "printed", 30, "the item to be printed")


def test_approval_through_the_held_queue_releases_the_print_job(room: PrintRoom) -> None:
    before = len(room.printer.received())
    wrong_house = ("Mr Mark Smith", "5 Oak Road", "Bradford BD1 4QQ")
    job = room.print_letter(letter_pdf(wrong_house), "wrong-house.pdf")
    assert room.cups.wait_job(job, FINAL)["job-state"] == "pending-held"
    ref, _ = room.item_of_job(job)
    queue = HeldQueue(room.engine, Settings(database_url=room.db))
    decided = queue.approve(ref, CHECKER, "checked with the social worker")
    assert decided.state == "approved"
    assert room.cups.wait_job(job, {"completed", "canceled", "aborted"})["job-state"] == "completed"
    wait_for(lambda: len(room.printer.received()) == before + 1, 30, "the approved letter")
    with room.engine.connect() as conn:
        actions = set(
            conn.execute(select(AuditEvent.action).where(AuditEvent.details["ref"].as_string() == ref))
            .scalars()
        )  # fmt: skip
    assert {"post.held", "held.approve", "post.job_resumed", "post.printed"} <= actions


def test_a_letter_for_the_wrong_case_never_reaches_the_printer(room: PrintRoom) -> None:
    before = len(room.printer.received())
    other_case = "Re: Amy Jones, case LS12P34567\n\nThe hearing about Amy is on 3 April."
    job = room.print_letter(letter_pdf(MARK, other_case), "amy.pdf")
    assert room.cups.wait_job(job, FINAL)["job-state"] == "pending-held"
    ref, state = room.item_of_job(job)
    assert state == "held"
    returned = run_gatekeeper(
        "held", "reject", ref, "--as", CHECKER, "--note", "wrong family", db=room.db, env=room.env
    )
    assert returned.returncode == 0, returned.stderr
    assert room.cups.wait_job(job, {"canceled", "completed", "aborted"})["job-state"] == "canceled"
    assert len(room.printer.received()) == before


def test_a_letter_leaking_a_confidential_address_is_cancelled_with_the_reason(
    room: PrintRoom,
) -> None:
    before = len(room.printer.received())
    leak = "Re: 853206\n\nJane has moved to Flat 2, 14 Mill Lane, Leeds LS6 2AB."
    job = room.print_letter(letter_pdf(MARK, leak), "leak.pdf")
    attributes = room.cups.wait_job(job, FINAL)
    assert attributes["job-state"] == "canceled", attributes
    ref, state = room.item_of_job(job)
    assert state == "blocked"
    message = attributes["job-printer-state-message"]
    assert f"blocked, not printed (ref {ref})" in message
    assert "LS6 2AB" not in message and "Mill Lane" not in message  # never repeated in CUPS
    assert len(room.printer.received()) == before


@pytest.mark.parametrize(
    ("name", "document", "reason"),
    [
        ("encrypted.pdf", encrypted_pdf("Mr Mark Smith\n3 Oak Road\nBradford BD1 4QQ"), "encrypted PDF"),
        ("corrupt.pdf", truncated_pdf(), "corrupt PDF"),
        ("scanned.pdf", scanned_pdf(), "no text layer"),
        ("no-address.pdf", letter_pdf(("Mr Mark Smith", "3 Oak Road", "Bradford")), "no address block"),
        ("letter.ps", POSTSCRIPT_JOB, "PostScript print job"),
    ],
)  # fmt: skip
def test_bad_input_is_held_with_a_reason_and_the_queue_keeps_working(
    room: PrintRoom, name: str, document: bytes, reason: str
) -> None:
    before = len(room.printer.received())
    job = room.print_letter(document, name)
    attributes = room.cups.wait_job(job, FINAL)
    assert attributes["job-state"] == "pending-held", attributes
    ref, state = room.item_of_job(job)
    assert state == "held"
    message = attributes["job-printer-state-message"]
    assert f"held for a second check (ref {ref})" in message and reason in message
    status = room.cups.printer_state("letters")
    assert "disabled" not in status, status  # a crashed backend would have stopped the queue
    good = room.print_letter(letter_pdf(JANE, salutation="Dear Ms Smith,"), f"after-{name}.pdf")
    assert room.cups.wait_job(good, FINAL)["job-state"] == "completed"
    wait_for(lambda: len(room.printer.received()) == before + 1, 30, "the next letter")


def test_the_service_reports_health_and_counts_letters(room: PrintRoom) -> None:
    assert json.loads(room.service.get("/healthz")) == {"ok": True, "problems": []}
    metrics = room.service.get("/metrics")
    assert 'gatekeeper_letters_total{outcome="released"}' in metrics
    assert "gatekeeper_letters_decision_seconds_bucket" in metrics
    log = [json.loads(line) for line in room.service.log_path.read_text().splitlines()]
    decided = [line for line in log if line.get("msg") == "decided"]
    assert decided and {"ref", "action", "job", "ms"} <= set(decided[0])
