"""Facts for the register's tests, made the way the rest of the system makes them.

Emails go through the real gate (parser, analysis, checks, policy) on the spec's
example record and are written to the store exactly as the relay's intake
writes them; held items are decided with `HeldQueue`, as the approval pages
and the command line do; a canary is marked as `CanaryMaker` marks one; a scan
alarm is the row the scan station writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from gatekeeper.config import Settings
from gatekeeper.decision import Decision
from gatekeeper.gate import Gate
from gatekeeper.held import HeldQueue
from gatekeeper.mail import item_from_email
from gatekeeper.policy import ApprovalPolicy
from gatekeeper.smtp.intake import new_ref
from gatekeeper.smtp.outbound import record_audit
from gatekeeper.store import open_store
from gatekeeper.store.approval import Canary
from gatekeeper.store.correspondence import Item, ItemContent, ItemState
from gatekeeper.store.importer import import_cases, import_staff
from gatekeeper.store.letters import ScanAlarm
from gatekeeper.store.models import utcnow
from tests.eml import eml
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE

SETTINGS = Settings(internal_domains=("gatekeeper.example",))
SENDER = "a.jones@gatekeeper.example"  # North team, staff
CHECKER = "b.khan@gatekeeper.example"  # North team, checker
OTHER_CHECKER = "c.ndlovu@gatekeeper.example"  # South team, checker
GOVERNANCE = "g.ward@gatekeeper.example"
ADMIN = "h.admin@gatekeeper.example"
STAFF: list[dict[str, Any]] = [
    {"email": SENDER, "name": "Alice Jones", "roles": ["staff"], "team": "North"},
    {"email": CHECKER, "name": "Bilal Khan", "roles": ["staff", "checker"], "team": "North"},
    {"email": OTHER_CHECKER, "name": "Chipo Ndlovu", "roles": ["checker"], "team": "South"},
    {"email": GOVERNANCE, "name": "Grace Ward", "roles": ["governance"], "team": "Governance"},
    {"email": ADMIN, "name": "Hugo Admin", "roles": ["admin"], "team": "IT"},
]
PASSWORD = "correct horse battery staple"

JANE = "Jane Smith <jane.smith@example.net>"
MARK = "Mark Smith <m.smith77@example.com>"
SARAH = "Sarah Jones <sarah.jones@example.org>"

# One email per mistake the checks exist for, with the cause the register should give it.
LOOKALIKE = dict(
    to=["Mark Smith <m.smith77@example.co>"],
    subject="853206",
    body="Dear Mark,\n\nThe hearing about Tom Smith is listed for 3 April.\n\nAlice",
)
AUTOCOMPLETE = dict(
    to=[SARAH],
    subject="Smith 853206 contact",
    body="Dear Jane,\n\nTom Smith's contact with his father will resume next week.\n\nAlice",
)
WRONG_CONTENT = dict(
    to=[JANE],
    subject="853206 update",
    body="Dear Jane,\n\nFurther to our call, Amy Jones will stay with Sarah Jones until the"
    " review. Dean Jones was arrested last week.\n\nAlice",
)
CONFIDENTIAL = dict(
    to=[MARK],
    subject="853206",
    body="Dear Mark,\n\nJane and Tom have moved to 14 Mill Lane, Leeds LS6 2AB. Tom's hair"
    " strand test was positive for cocaine.\n\nAlice",
)


def load_record(engine: Engine) -> None:
    assert not import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in STAFF]).rejected


def build_gate(folder: Path) -> Gate:
    """The real gate on the example record (its own store: the gate only reads it once)."""
    engine = open_store(f"sqlite:///{folder / 'gate.db'}")
    load_record(engine)
    return Gate.from_store(engine, SETTINGS)


def relay_writes(
    engine: Engine,
    raw: bytes,
    decision: Decision,
    *,
    sender: str = SENDER,
    team: str | None = "North",
    at: dt.datetime | None = None,
) -> tuple[int, str]:
    """Store an email and the gate's decision as the relay's intake does; (item id, ref)."""
    ref = new_ref()
    item = item_from_email(raw)
    rcpt_to = [r.address for r in item.recipients if r.address]
    now = at or utcnow()
    with engine.begin() as conn:  # Intake._insert
        item_id = conn.execute(
            insert(Item).returning(Item.id),
            {
                "ref": ref,
                "channel": "email",
                "sender": sender,
                "team": team,
                "subject": item.subject,
                "envelope": {"mail_from": sender, "rcpt_to": rcpt_to, "smtputf8": False},
                "recipients": [],
                "case_ids": [],
                "data_subjects": [],
                "findings": [],
                "state": ItemState.RECEIVED.value,
                "monitor_only": False,
                "message_id": item.message_id,
                "size": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "received_at": now,
                "node": "test",
            },
        ).scalar_one()
        conn.execute(insert(ItemContent), {"item_id": item_id, "raw": raw})
    state = {"release": "released", "hold": "held", "block": "blocked"}[decision.verdict.value]
    findings = [f.as_json() for f in decision.findings]
    with engine.begin() as conn:  # Intake._decide
        conn.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(
                state=state,
                verdict=decision.verdict.value,
                enforced_verdict=(decision.enforced_verdict or decision.verdict).value,
                monitor_only=False,
                findings=findings,
                recipients=[r.as_json() for r in decision.recipients],
                case_ids=list(decision.case_ids),
                data_subjects=list(decision.data_subjects),
                decided_at=now,
            )
        )
        record_audit(
            conn,
            f"relay.{state}",
            actor=sender,
            item_id=item_id,
            details={"ref": ref, "checks": [f["check"] for f in findings]},
        )
    return item_id, ref


def send(
    engine: Engine, gate: Gate, mistake: dict[str, Any], *, at: dt.datetime | None = None
) -> tuple[int, str, Decision]:
    """An email through the real gate into the store; (item id, ref, the gate's decision)."""
    raw = eml(**mistake)
    decision = gate.check(item_from_email(raw))
    item_id, ref = relay_writes(engine, raw, decision, at=at)
    return item_id, ref, decision


def queue(engine: Engine) -> HeldQueue:
    return HeldQueue(engine, SETTINGS, ApprovalPolicy(min_review_seconds=0))


def mark_canary(engine: Engine, item_id: int, kind: str = "recipient_lookalike") -> None:
    """What `CanaryMaker` adds to a held item to make it a canary."""
    with engine.begin() as conn:
        conn.execute(
            insert(Canary).values(
                item_id=item_id,
                kind=kind,
                case_id="853206",
                planted="m.smith77@example.co",
                expected="m.smith77@example.com",
                created_at=utcnow(),
            )
        )


def scan_alarm(
    engine: Engine,
    *,
    item_id: int | None,
    other_item_id: int | None,
    kind: str = "foreign_page",
    at: dt.datetime | None = None,
) -> int:
    """The row the scan station writes when a page is about to go into the wrong envelope."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(ScanAlarm)
                .values(
                    at=at or utcnow(),
                    operator="p.room@gatekeeper.example",
                    kind=kind,
                    item_id=item_id,
                    other_item_id=other_item_id,
                    summary="page 2 of another letter scanned into this envelope",
                    details={},
                )
                .returning(ScanAlarm.id)
            ).scalar_one()
        )


def state_of(engine: Engine, item_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(Item.state).where(Item.id == item_id)).scalar_one())


def letter(engine: Engine, pdf: bytes, *, data_subjects: list[str], team: str = "North") -> int:
    """A letter the gate released and the postal room is putting into an envelope."""
    with engine.begin() as conn:
        item_id = conn.execute(
            insert(Item).returning(Item.id),
            {
                "ref": new_ref(),
                "channel": "post",
                "sender": SENDER,
                "team": team,
                "subject": "letter",
                "envelope": {},
                "recipients": [],
                "case_ids": ["853206"],
                "data_subjects": data_subjects,
                "verdict": "release",
                "findings": [],
                "state": ItemState.RELEASED.value,
                "monitor_only": False,
                "size": len(pdf),
                "sha256": hashlib.sha256(pdf).hexdigest(),
                "received_at": utcnow(),
                "decided_at": utcnow(),
            },
        ).scalar_one()
        conn.execute(insert(ItemContent), {"item_id": item_id, "raw": pdf})
    return int(item_id)
