"""A decided letter's print job: released in CUPS once approved, cancelled once refused.

CUPS holds a letter's job while it waits for a second check. When a checker
approves it, `lp -i JOB -H resume` releases the job: CUPS runs the backend
again, the letters service recognises the approved letter and it prints.
When it is returned, withdrawn or expires, `cancel JOB` removes it.

The approval code calls this right after a decision (whatever decided it: the
command line or the web pages); the letters service sweeps for decisions whose
job could not be reached then (CUPS down, decided on another machine) and
tries again. A job that no longer exists is noted and left alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Engine, Table, and_, or_, select, update

from gatekeeper.config import Settings
from gatekeeper.smtp.outbound import record_audit
from gatekeeper.store.correspondence import Item, ItemState
from gatekeeper.store.letters import Letter
from gatekeeper.store.models import utcnow

log = logging.getLogger(__name__)

ITEMS = cast(Table, Item.__table__)
LETTERS = cast(Table, Letter.__table__)
COMMAND_SECONDS = 30.0
# `released` only reaches here from the sweep, for a letter whose backend gave up waiting
# (the job was held) before the gate released it.
RELEASE_STATES = frozenset({ItemState.APPROVED.value, ItemState.RELEASED.value})
CANCEL_STATES = frozenset(
    {
        ItemState.RETURNED.value,
        ItemState.WITHDRAWN.value,
        ItemState.EXPIRED.value,
        ItemState.BLOCKED.value,
    }
)
# A blocked letter's backend cancels its own job. What `lp`/`cancel` say when the job is
# no longer there to act on:
_GONE = ("does not exist", "not held", "already", "not found", "completed", "canceled")


@dataclass(frozen=True)
class JobOutcome:
    action: str  # "resumed", "cancelled", "gone", "failed" or "none"
    detail: str = ""


def job_command(action: str, server: str, job_id: int) -> list[str]:
    if action == "resume":
        return ["lp", "-h", server, "-i", str(job_id), "-H", "resume"]
    return ["cancel", "-h", server, str(job_id)]


def _run(command: list[str]) -> tuple[bool, str]:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_SECONDS, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{command[0]}: {exc}"
    said = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode == 0, said[0] if said else f"exit status {done.returncode}"


def act_on_decided_letter(engine: Engine, settings: Settings, item_id: int) -> JobOutcome:
    """Release or cancel the CUPS job of a decided letter; never raises."""
    try:
        return _act(engine, settings, item_id)
    except Exception as exc:  # the decision stands; the letters service sweep tries again
        log.exception("could not act on a letter's print job", extra={"item_id": item_id})
        return JobOutcome("failed", str(exc))


def _act(engine: Engine, settings: Settings, item_id: int) -> JobOutcome:
    with engine.connect() as conn:
        row = conn.execute(
            select(
                ITEMS.c.ref,
                ITEMS.c.state,
                LETTERS.c.id,
                LETTERS.c.print_server,
                LETTERS.c.print_job,
                LETTERS.c.job_action,
            )
            .join(LETTERS, LETTERS.c.item_id == ITEMS.c.id)
            .where(ITEMS.c.id == item_id)
        ).first()
    if row is None or row.print_job is None or row.job_action is not None:
        return JobOutcome("none")
    if row.state in RELEASE_STATES:
        wanted, done_as = "resume", "resumed"
    elif row.state in CANCEL_STATES:
        wanted, done_as = "cancel", "cancelled"
    else:
        return JobOutcome("none")
    server = settings.cups_server or row.print_server or "localhost:631"
    ok, said = _run(job_command(wanted, server, row.print_job))
    if ok:
        outcome = JobOutcome(done_as)
    elif any(word in said.lower() for word in _GONE):
        outcome = JobOutcome("gone", said)
    else:
        log.warning(
            "print job not reached",
            extra={"ref": row.ref, "job": row.print_job, "server": server, "error": said},
        )
        return JobOutcome("failed", said)
    with engine.begin() as conn:
        conn.execute(
            update(LETTERS)
            .where(LETTERS.c.id == row.id, LETTERS.c.job_action.is_(None))
            .values(job_action=outcome.action, job_action_at=utcnow())
        )
        record_audit(
            conn,
            f"post.job_{outcome.action}",
            item_id=item_id,
            details={"ref": row.ref, "job": row.print_job, "server": server, "said": said},
        )
    return outcome


def undone_decisions(
    engine: Engine, late: dt.timedelta = dt.timedelta(minutes=5), limit: int = 50
) -> list[int]:
    """Items of decided letters whose print job Gatekeeper has not yet released or cancelled,
    and released letters still unprinted `late` after their decision (the backend held the
    job because the answer came too late)."""
    decided = [ItemState.APPROVED.value, *sorted(CANCEL_STATES - {"blocked"})]
    overdue = and_(ITEMS.c.state == ItemState.RELEASED.value, ITEMS.c.decided_at < utcnow() - late)
    query = (
        select(ITEMS.c.id)
        .join(LETTERS, LETTERS.c.item_id == ITEMS.c.id)
        .where(
            ITEMS.c.channel == "post",
            or_(ITEMS.c.state.in_(decided), overdue),
            LETTERS.c.print_job.is_not(None),
            LETTERS.c.job_action.is_(None),
            LETTERS.c.printed_at.is_(None),
        )
        .order_by(ITEMS.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())
