"""A real approval web app on a real store, with the sample record, staff who can sign in,
and items the real gate held: what the in-process web tests share.

Items are held as the relay holds them: the message's bytes stored first, then
the real gate's decision (findings, resolved recipients, cases). The gate is
built once per test session from its own copy of the sample record, which is
the same record every test database gets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, insert, select
from starlette.applications import Starlette

from gatekeeper.config import Settings
from gatekeeper.gate import Gate
from gatekeeper.mail import item_from_email
from gatekeeper.passwords import hash_password
from gatekeeper.quarantine import Quarantine
from gatekeeper.sample import SampleRecord
from gatekeeper.smtp.intake import new_ref
from gatekeeper.store import open_store
from gatekeeper.store.correspondence import AuditEvent, Item, ItemContent, OutboundMessage
from gatekeeper.store.importer import import_cases, import_staff
from gatekeeper.store.models import utcnow
from gatekeeper.store.sealed import open_outbound
from gatekeeper.store.staff import set_password
from gatekeeper.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's note that its test client prefers httpx2
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"
SEED = 11
CASES = 60
STAFF = 20
INTERNAL = ("gatekeeper.example",)
_HASH = hash_password(PASSWORD)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    team: str | None
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Record:
    """The sample record and staff, as the tests pick people and addresses from them."""

    cases: list[dict[str, Any]]
    staff: list[dict[str, Any]]

    @classmethod
    def load(cls) -> Record:
        sample = SampleRecord(seed=SEED)
        cases = [json.loads(line) for line in sample.case_lines(CASES)]
        return cls(cases, list(sample.staff(STAFF)))

    def person(self, roles: Sequence[str], skip: int = 0) -> Person:
        found = [s for s in self.staff if s["roles"] == list(roles)][skip]
        return Person(found["email"], found["name"], found["team"], tuple(found["roles"]))

    def lay_party(self, skip: int = 0) -> dict[str, Any]:
        parties = [
            p
            for c in self.cases
            if c["status"] == "open"
            for p in c["parties"]
            if p["role"] == "applicant" and p.get("emails") and not p.get("confidential")
        ]
        return parties[skip]


def make_gate(folder: Path, record: Record) -> Gate:
    engine = open_store(f"sqlite:///{folder / 'gate.db'}")
    assert not import_cases(engine, [json.dumps(c) for c in record.cases]).rejected
    assert not import_staff(engine, [json.dumps(s) for s in record.staff]).rejected
    gate = Gate.from_store(engine, Settings(internal_domains=INTERNAL))
    engine.dispose()
    return gate


def lookalike_of(address: str) -> str:
    """One letter swapped in the domain: the look-alike a tired finger makes."""
    local, _, domain = address.partition("@")
    name, dot, rest = domain.partition(".")
    return f"{local}@{name[:-2]}{name[-1]}{name[-2]}{dot}{rest}"


def message(
    sender: str,
    to: str,
    subject: str,
    body: str,
    *,
    html: str | None = None,
    to_name: str | None = None,
) -> bytes:
    email = EmailMessage(policy=SMTP)
    email["From"] = sender
    email["To"] = f"{to_name} <{to}>" if to_name else to
    email["Subject"] = subject
    email["Date"] = format_datetime(dt.datetime.now(dt.UTC))  # as every mail client writes
    email["Message-ID"] = make_msgid(domain="client.test")
    email.set_content(body)
    if html is not None:
        email.add_alternative(html, subtype="html")
    return email.as_bytes()


@dataclass
class WebWorld:
    engine: Engine
    settings: Settings
    app: Starlette
    record: Record
    gate: Gate
    sender: Person  # staff only
    colleague: Person  # staff only, another
    checker: Person
    checker2: Person
    governance: Person
    admin: Person  # staff and admin, not a checker
    clients: list[TestClient] = field(default_factory=list)

    @classmethod
    def build(cls, engine: Engine, record: Record, gate: Gate, **settings: Any) -> WebWorld:
        assert not import_cases(engine, [json.dumps(c) for c in record.cases]).rejected
        assert not import_staff(engine, [json.dumps(s) for s in record.staff]).rejected
        values: dict[str, Any] = {"internal_domains": INTERNAL, **settings}
        configured = Settings(**values)
        world = cls(
            engine=engine,
            settings=configured,
            app=create_app(configured, engine, sweep=False),
            record=record,
            gate=gate,
            sender=record.person(["staff"]),
            colleague=record.person(["staff"], 1),
            checker=record.person(["staff", "checker"]),
            checker2=record.person(["staff", "checker"], 1),
            governance=record.person(["governance"]),
            admin=record.person(["staff", "admin"]),
        )
        for person in world.everyone():
            assert set_password(engine, person.email, _HASH)
        return world

    def everyone(self) -> list[Person]:
        return [
            self.sender,
            self.colleague,
            self.checker,
            self.checker2,
            self.governance,
            self.admin,
        ]

    # -- browsers -------------------------------------------------------------------------

    def client(self, person: Person | None = None, **kwargs: Any) -> TestClient:
        """A browser of its own (its own cookies), signed in as `person` if given."""
        client = TestClient(self.app, follow_redirects=False, **kwargs)
        self.clients.append(client)
        if person is not None:
            form = {"email": person.email, "password": PASSWORD, "next": "/"}
            response = post_form(client, "/login", form, page="/login")
            assert response.status_code == 303, response.text
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()

    # -- held items -----------------------------------------------------------------------

    def hold(self, raw: bytes, sender: Person, recipients: Sequence[str]) -> str:
        """Store `raw` as the relay would and let the real gate decide; it must hold it."""
        decision = self.gate.check(
            item_from_email(raw, sender=sender.email, envelope_recipients=list(recipients))
        )
        assert decision.verdict.value == "hold", decision.as_json()
        ref = new_ref()
        with self.engine.begin() as conn:
            item_id = conn.execute(
                insert(Item).returning(Item.id),
                {
                    "ref": ref,
                    "channel": "email",
                    "sender": sender.email,
                    "team": sender.team,
                    "subject": _subject(raw),
                    "envelope": {
                        "mail_from": sender.email,
                        "rcpt_to": list(recipients),
                        "smtputf8": False,
                        "client": {
                            "address": "127.0.0.1",
                            "helo": "client.test",
                            "tls": True,
                            "login": sender.email,
                            "protocol": "ESMTPSA",
                        },
                    },
                    "recipients": [r.as_json() for r in decision.recipients],
                    "case_ids": list(decision.case_ids),
                    "data_subjects": list(decision.data_subjects),
                    "verdict": "hold",
                    "enforced_verdict": "hold",
                    "findings": [f.as_json() for f in decision.findings],
                    "state": "held",
                    "monitor_only": False,
                    "size": len(raw),
                    "sha256": hashlib.sha256(raw).hexdigest(),
                    "received_at": utcnow(),
                    "decided_at": utcnow(),
                },
            ).scalar_one()
            conn.execute(insert(ItemContent), {"item_id": item_id, "raw": raw})
        return ref

    def hold_lookalike(self, sender: Person | None = None, skip: int = 0, **kw: Any) -> str:
        party = self.record.lay_party(skip)
        to = lookalike_of(party["emails"][0])
        first = party["name"].split()[0]
        raw = message(
            (sender or self.sender).email,
            to,
            kw.pop("subject", "Contact next week"),
            f"Dear {first},\n\nHere are the arrangements for contact next week.\n",
            to_name=kw.pop("to_name", party["name"]),
            **kw,
        )
        return self.hold(raw, sender or self.sender, [to])

    def item(self, ref: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(Item).where(Item.ref == ref)).one()

    def outbound(self, ref: str) -> list[Any]:
        """The item's queued messages, each notice's bytes opened as they will be sent."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(OutboundMessage)
                .join(Item, Item.id == OutboundMessage.item_id)
                .where(Item.ref == ref)
                .order_by(OutboundMessage.id)
            ).all()
        quarantine = Quarantine.of(self.engine)
        return [
            SimpleNamespace(**{**r._asdict(), "raw": open_outbound(quarantine, r)}) for r in rows
        ]

    def audit(self, action: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )


def _subject(raw: bytes) -> str:
    found = re.search(rb"^Subject: (.*)$", raw, re.M)
    return found.group(1).decode().strip() if found else ""


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def post_form(
    client: TestClient, path: str, data: dict[str, Any], *, page: str, **kwargs: Any
) -> Any:
    """Submit a form as a browser would: its CSRF token read from the page it is on."""
    shown = client.get(page)
    assert shown.status_code == 200, (page, shown.status_code, shown.text[:500])
    return client.post(path, data={"csrf": csrf_of(shown.text), **data}, **kwargs)


@dataclass
class Fixtures:
    """What every web test shares: the sample record and a gate built on it (once a session)."""

    record: Record
    gate: Gate


@cache
def shared_fixtures() -> Fixtures:
    record = Record.load()
    folder = Path(tempfile.mkdtemp(prefix="gatekeeper-web-gate-"))
    try:
        return Fixtures(record, make_gate(folder, record))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def web_world(engine: Engine, fixtures: Fixtures, **settings: Any) -> Iterator[WebWorld]:
    world = WebWorld.build(engine, fixtures.record, fixtures.gate, **settings)
    try:
        yield world
    finally:
        world.close()
