"""The letters desk: one print job in, stored, checked, decided, and the backend's answer out.

A job is stored first (its PDF in `item_contents`, the item `received`, a
`letters` row with the CUPS job), then the gate decides, and the decision is
stored before the answer goes back: release (the letter is stamped and
printed), hold (CUPS holds the job; the item joins the approval queue) or
block (CUPS cancels the job). When CUPS runs the same job again (the same job
id on the same server, with the same bytes), the stored decision answers:
an approved letter prints, a held one stays held, a refused one is cancelled.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from gatekeeper.config import Settings
from gatekeeper.decision import Decision, Verdict
from gatekeeper.item import Item as CheckedItem
from gatekeeper.post.address_block import AddressWindow
from gatekeeper.post.letter import item_from_letter
from gatekeeper.post.messages import blocked_message, held_message, refused_message
from gatekeeper.post.printjob import Action, Answer, PrintJob
from gatekeeper.post.senders import staff_address
from gatekeeper.post.stamp import StampError, stamp_letter
from gatekeeper.quarantine import Quarantine
from gatekeeper.smtp.intake import new_ref
from gatekeeper.smtp.outbound import record_audit
from gatekeeper.store.correspondence import Item, ItemContent, ItemState
from gatekeeper.store.letters import Letter
from gatekeeper.store.models import utcnow
from gatekeeper.store.sealed import sealed_content, sealed_subject

log = logging.getLogger(__name__)

ITEMS = cast(Table, Item.__table__)
CONTENTS = cast(Table, ItemContent.__table__)
LETTERS = cast(Table, Letter.__table__)

_STATE_OF = {
    Verdict.RELEASE: ItemState.RELEASED,
    Verdict.HOLD: ItemState.HELD,
    Verdict.BLOCK: ItemState.BLOCKED,
}
PRINTABLE = frozenset({ItemState.RELEASED.value, ItemState.APPROVED.value, ItemState.PRINTED.value})
UNDECIDED = frozenset({ItemState.RECEIVED.value, ItemState.DEFERRED.value})


@dataclass(frozen=True)
class StoredLetter:
    item_id: int
    letter_id: int
    ref: str
    state: str
    findings: list[dict[str, Any]]
    party_id: str | None
    printed: bool


@dataclass
class Handled:
    """The answer, and what the service's metrics and log want to know about it."""

    answer: Answer
    outcome: str  # "released", "held", "blocked", "reprint", "again_held", ... "deferred"
    stages: dict[str, float] = field(default_factory=dict)
    pages: int = 0


class LetterIntake:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        check: Callable[[CheckedItem], Decision],
        node: str,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.check = check
        self.node = node
        self.window = AddressWindow.parse(settings.letter_window)
        self.quarantine = Quarantine.for_store(settings, engine)
        self.quarantine.prepare()

    # -- a job from the backend -----------------------------------------------------------

    def handle(self, job: PrintJob, pdf: bytes) -> Handled:
        """Decide one print job (blocking: the service runs it in its gate thread)."""
        digest = hashlib.sha256(pdf).hexdigest()
        stored = self._stored(job, digest)
        if stored is not None and stored.state not in UNDECIDED:
            return self._again(stored, job, pdf)
        sender, team = staff_address(self.engine, job.user, self.settings.letters_user_domain)
        if stored is None:
            item_id, letter_id, ref = self._accept(job, pdf, digest, sender, team)
        else:
            item_id, letter_id, ref = stored.item_id, stored.letter_id, stored.ref
        started = time.perf_counter()
        item = item_from_letter(pdf, sender=sender, window=self.window, title=job.title)
        read = time.perf_counter()
        try:
            decision = self.check(item)
        except Exception as exc:
            log.exception("the gate failed on a letter", extra={"ref": ref})
            self._defer(item_id, ref, job, f"{type(exc).__name__}: {exc}")
            message = (
                f"Gatekeeper: held, the letter could not be checked just now (ref {ref}); "
                "release the job to try again"
            )
            return Handled(Answer(Action.HOLD, ref, message), "deferred")
        checked = time.perf_counter()
        stages = {"read": read - started, **{k: v / 1000 for k, v in decision.timings_ms.items()}}
        stages.pop("total", None)
        findings = [f.as_json() for f in decision.findings]
        state = _STATE_OF[decision.verdict]
        party = decision.recipients[0].party_id if decision.recipients else None
        stamped = None
        if state is ItemState.RELEASED:
            try:
                stamped = stamp_letter(pdf, ref, party)
            except StampError as exc:
                state = ItemState.HELD
                findings.append(_stamp_finding(str(exc)))
        stages["stamp"] = time.perf_counter() - checked
        self._decide(
            item_id,
            letter_id,
            ref,
            job=job,
            item=item,
            decision=decision,
            state=state,
            findings=findings,
        )
        pages = int(item.extra.get("pages", "0") or 0)
        if state is ItemState.RELEASED:
            message = f"Gatekeeper: checked and released (ref {ref})"
            return Handled(Answer(Action.PRINT, ref, message, stamped), "released", stages, pages)
        if state is ItemState.HELD:
            return Handled(Answer(Action.HOLD, ref, held_message(ref, findings)), "held", stages)
        return Handled(
            Answer(Action.CANCEL, ref, blocked_message(ref, findings)), "blocked", stages
        )

    def _again(self, stored: StoredLetter, job: PrintJob, pdf: bytes) -> Handled:
        """A job CUPS runs again: the stored decision answers."""
        ref = stored.ref
        if stored.state in PRINTABLE:
            try:
                stamped = stamp_letter(pdf, ref, stored.party_id)
            except StampError as exc:
                return Handled(
                    Answer(Action.HOLD, ref, f"Gatekeeper: held (ref {ref}): {exc}"), "error"
                )
            with self.engine.begin() as conn:
                record_audit(
                    conn,
                    "post.reprint" if stored.printed else "post.print_approved",
                    actor=job.user,
                    item_id=stored.item_id,
                    details={"ref": ref, "job": job.job_id, "queue": job.queue},
                )
            message = f"Gatekeeper: checked and released (ref {ref})"
            outcome = "reprint" if stored.printed else "approved"
            return Handled(Answer(Action.PRINT, ref, message, stamped), outcome)
        if stored.state == ItemState.HELD.value:
            return Handled(
                Answer(Action.HOLD, ref, held_message(ref, stored.findings)), "still_held"
            )
        if stored.state == ItemState.BLOCKED.value:
            message = blocked_message(ref, stored.findings)
        else:
            message = refused_message(ref, stored.state)
        return Handled(Answer(Action.CANCEL, ref, message), f"again_{stored.state}")

    # -- the store ------------------------------------------------------------------------

    def _stored(self, job: PrintJob, digest: str) -> StoredLetter | None:
        """The letter this job already is, if CUPS ran it before (newest first)."""
        query = (
            select(
                ITEMS.c.id,
                LETTERS.c.id.label("letter_id"),
                ITEMS.c.ref,
                ITEMS.c.state,
                ITEMS.c.findings,
                LETTERS.c.party_id,
                LETTERS.c.printed_at,
            )
            .join(LETTERS, LETTERS.c.item_id == ITEMS.c.id)
            .where(
                LETTERS.c.print_job == job.job_id,
                LETTERS.c.print_server == job.server,
                LETTERS.c.print_queue == job.queue,
                ITEMS.c.sha256 == digest,
            )
            .order_by(ITEMS.c.id.desc())
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredLetter(
            row.id,
            row.letter_id,
            row.ref,
            row.state,
            list(row.findings or []),
            row.party_id,
            row.printed_at is not None,
        )

    def _accept(
        self, job: PrintJob, pdf: bytes, digest: str, sender: str, team: str | None
    ) -> tuple[int, int, str]:
        for _ in range(5):
            ref = new_ref()
            try:
                with self.engine.begin() as conn:
                    item_id, letter_id = self._insert(
                        conn, job, pdf, digest=digest, sender=sender, team=team, ref=ref
                    )
            except IntegrityError:
                continue  # a ref already taken: draw another
            return item_id, letter_id, ref
        raise RuntimeError("could not draw an unused ref")

    def _insert(
        self,
        conn: Connection,
        job: PrintJob,
        pdf: bytes,
        *,
        digest: str,
        sender: str,
        team: str | None,
        ref: str,
    ) -> tuple[int, int]:
        item_id: int = conn.execute(
            insert(ITEMS).returning(ITEMS.c.id),
            {
                "ref": ref,
                "channel": "post",
                "sender": sender,
                "team": team,
                # The job's title is often the document's name: it is sealed as the subject.
                **sealed_subject(self.quarantine, ref, job.title),
                "envelope": {"mail_from": sender, "rcpt_to": [], "print": _job_json(job)},
                "recipients": [],
                "case_ids": [],
                "data_subjects": [],
                "findings": [],
                "state": ItemState.RECEIVED.value,
                "monitor_only": False,
                "message_id": None,
                "size": len(pdf),
                "sha256": digest,
                "received_at": utcnow(),
                "node": self.node,
            },
        ).scalar_one()
        conn.execute(insert(CONTENTS), sealed_content(self.quarantine, item_id, pdf))
        letter_id: int = conn.execute(
            insert(LETTERS).returning(LETTERS.c.id),
            {
                "item_id": item_id,
                "pages": 0,
                "addressee": "",
                "print_server": job.server,
                "print_queue": job.queue,
                "print_job": job.job_id,
                "job_user": job.user,
                "title": "",
                "print_count": 0,
            },
        ).scalar_one()
        record_audit(
            conn,
            "post.received",
            actor=sender,
            item_id=item_id,
            details={"ref": ref, "job": job.job_id, "queue": job.queue, "user": job.user},
        )
        return item_id, letter_id

    def _decide(
        self,
        item_id: int,
        letter_id: int,
        ref: str,
        *,
        job: PrintJob,
        item: CheckedItem,
        decision: Decision,
        state: ItemState,
        findings: list[dict[str, Any]],
    ) -> None:
        addressee = item.recipients[0].label() if item.recipients else ""
        enforced = decision.enforced_verdict or decision.verdict
        with self.engine.begin() as conn:
            conn.execute(
                update(ITEMS)
                .where(ITEMS.c.id == item_id)
                .values(
                    state=state.value,
                    verdict=decision.verdict.value,
                    enforced_verdict=enforced.value,
                    monitor_only=enforced is not decision.verdict,
                    findings=findings,
                    recipients=[r.as_json() for r in decision.recipients],
                    case_ids=list(decision.case_ids),
                    data_subjects=list(decision.data_subjects),
                    decided_at=utcnow(),
                    envelope={
                        "mail_from": item.sender or "",
                        "rcpt_to": [addressee] if addressee else [],
                        "print": _job_json(job),
                    },
                )
            )
            conn.execute(
                update(LETTERS)
                .where(LETTERS.c.id == letter_id)
                .values(
                    pages=int(item.extra.get("pages", "0") or 0),
                    addressee=addressee,
                    party_id=decision.recipients[0].party_id if decision.recipients else None,
                )
            )
            record_audit(
                conn,
                f"post.{state.value}",
                actor=item.sender,
                item_id=item_id,
                details={"ref": ref, "job": job.job_id, "checks": [f["check"] for f in findings]},
            )

    def _defer(self, item_id: int, ref: str, job: PrintJob, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(ITEMS)
                .where(ITEMS.c.id == item_id)
                .values(state=ItemState.DEFERRED.value, decided_at=utcnow())
            )
            record_audit(
                conn,
                "post.deferred",
                actor=job.user,
                item_id=item_id,
                details={"ref": ref, "job": job.job_id, "reason": reason},
            )

    # -- the backend's report after printing ----------------------------------------------

    def printed(self, ref: str, job_id: int, status: int) -> bool:
        """Record what the real printer's backend said; False if the ref is no such letter."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(ITEMS.c.id, ITEMS.c.state, LETTERS.c.id.label("letter_id"))
                .join(LETTERS, LETTERS.c.item_id == ITEMS.c.id)
                .where(ITEMS.c.ref == ref.upper(), LETTERS.c.print_job == job_id)
            ).first()
            if row is None:
                return False
            if status == 0:
                if row.state in PRINTABLE:
                    conn.execute(
                        update(ITEMS)
                        .where(ITEMS.c.id == row.id)
                        .values(state=ItemState.PRINTED.value)
                    )
                conn.execute(
                    update(LETTERS)
                    .where(LETTERS.c.id == row.letter_id)
                    .values(printed_at=utcnow(), print_count=LETTERS.c.print_count + 1)
                )
            record_audit(
                conn,
                "post.printed" if status == 0 else "post.print_failed",
                item_id=row.id,
                details={"ref": ref.upper(), "job": job_id, "status": status},
            )
        return True


def _job_json(job: PrintJob) -> dict[str, Any]:
    return {
        "server": job.server,
        "queue": job.queue,
        "job": job.job_id,
        "user": job.user,
        "copies": job.copies,
    }


def _stamp_finding(problem: str) -> dict[str, Any]:
    return {
        "check": "unreadable_content",
        "severity": "hold",
        "summary": f"{problem}; a person must look at it before it prints",
        "evidence": {"where": "letter", "problem": problem},
    }
