"""Canary items: synthetic mis-addressed emails planted in the approval queue.

They measure whether checkers catch what they should. Each is written from the
case record (a look-alike of a party's verified address, or a message about one
family addressed to a party of another), checked by the real gate, and kept
only if the gate holds it, so its findings read exactly like real ones. It is
stored like an item the relay held, under the name of a member of staff who is
not a checker; only its row in `canaries` marks it. It is never sent, noticed
or shown to its nominal sender, whatever is decided (`HeldQueue._settle`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine, Table, and_, func, insert, select

from gatekeeper.contact import email_key
from gatekeeper.quarantine import Quarantine
from gatekeeper.record import PROFESSIONAL_ROLES
from gatekeeper.smtp.intake import new_ref
from gatekeeper.smtp.notices import node_name
from gatekeeper.smtp.outbound import record_audit
from gatekeeper.store.approval import Canary
from gatekeeper.store.correspondence import Item, ItemContent, ItemState
from gatekeeper.store.models import Case, Party, PartyEmail, StaffRole, StaffUser, utcnow
from gatekeeper.store.sealed import sealed_content, sealed_subject

if TYPE_CHECKING:
    from gatekeeper.config import Settings
    from gatekeeper.decision import Decision
    from gatekeeper.gate import Gate

log = logging.getLogger(__name__)

ITEMS = cast(Table, Item.__table__)
CONTENTS = cast(Table, ItemContent.__table__)
CANARIES = cast(Table, Canary.__table__)

# The findings that show a checker the planted mistake, per kind of canary.
CAUGHT_BY = {
    "recipient_lookalike": frozenset({"recipient_lookalike"}),
    "recipient_other_case": frozenset(
        {"recipient_other_case", "content_other_case", "display_name_mismatch"}
    ),
}
ATTEMPTS = 12
# A gate is rebuilt after this long, so canaries follow a changed record.
GATE_LIFETIME = 3600.0

SUBJECTS = (
    "Contact arrangements",
    "Update after the hearing",
    "Documents the court asked for",
    "Meeting next week",
    "School holiday plans",
)
BODIES = (
    "Dear {first},\n\nFurther to our conversation, I am writing to confirm the contact"
    " arrangements for {child} over the next two weeks. Please let me know by Friday if the"
    " times do not suit you.\n\nOur reference is {case}.\n\nKind regards\n\n{sender}\n{team}\n",
    "Dear {first},\n\nThank you for coming to the hearing. As promised, the next step is a"
    " meeting about {child}'s school and contact; I will send the date once the court"
    " confirms it.\n\nCase reference {case}.\n\nBest wishes\n\n{sender}\n{team}\n",
    "Hello {first},\n\nThe court has asked for the reports about {child} before the next"
    " hearing. Could you send me the school letter you mentioned?\n\nMany thanks\n\n{sender}\n"
    "{team} (ref {case})\n",
)


@dataclass(frozen=True)
class CanaryDraft:
    kind: str
    case_id: str
    planted: str  # the wrong address it goes to
    expected: str  # the address the record has
    sender: str
    team: str | None
    subject: str
    message_id: str
    raw: bytes


@dataclass(frozen=True)
class _Party:
    party_id: str
    case_id: str
    role: str
    name: str
    emails: tuple[str, ...]

    @property
    def lay(self) -> bool:
        return self.role not in PROFESSIONAL_ROLES and self.role != "solicitor"

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


class CanaryMaker:
    """Writes canaries from the record and keeps those the real gate holds."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        seed: int | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._gate = gate
        self._gate_built = time.monotonic() if gate else 0.0
        # Sealed like every held item: not even the store tells a canary apart.
        self.quarantine = Quarantine.for_store(settings, engine)
        self.quarantine.prepare()

    def gate(self) -> Gate:
        """The real gate, built on first use (the record and language model load once)."""
        if self._gate is None or time.monotonic() - self._gate_built > GATE_LIFETIME:
            from gatekeeper.gate import Gate

            self._gate = Gate.from_store(self.engine, self.settings)
            self._gate_built = time.monotonic()
        return self._gate

    def plant(self, kinds: Sequence[str]) -> str | None:
        """Write, check and store one canary; its ref, or None when none could be made."""
        senders = self._senders()
        if not senders or not kinds:
            return None
        for _ in range(ATTEMPTS):
            kind = self.rng.choice(list(kinds))
            draft = self.draft(kind, self.rng.choice(senders))
            if draft is None:
                continue
            decision = self._check(draft)
            found = {f.finding.check for f in decision.findings}
            if decision.verdict.value == "hold" and found & CAUGHT_BY[kind]:
                return self._store(draft, decision)
        log.warning("no canary could be made from the record this round")
        return None

    def draft(self, kind: str, sender: tuple[str, str, str | None]) -> CanaryDraft | None:
        """A canary of `kind` from a random case, sent in `sender`'s name; None if it won't do."""
        case = self._random_case()
        if case is None:
            return None
        parties = self._parties(case)
        addressee = next((p for p in self._shuffled(parties) if p.lay and p.emails), None)
        children = [p for p in parties if p.role == "child"]
        if addressee is None:
            return None
        if kind == "recipient_lookalike":
            planted = self._lookalike(addressee.emails[0])
            if planted is None or self._in_record(planted):  # a slip onto a real address
                return None
        else:  # another family's party, named as this one (autocomplete picked the wrong one)
            other = self._other_case_party(case)
            if other is None:
                return None
            planted = other.emails[0]
        email, name, team = sender
        child = children[0].first_name if children else "the children"
        subject = self.rng.choice(SUBJECTS)
        body = self.rng.choice(BODIES).format(
            first=addressee.first_name,
            child=child,
            case=case,
            sender=name,
            team=f"{team} team" if team else "Family court team",
        )
        message = EmailMessage(policy=SMTP)
        message["From"] = Address(name, addr_spec=email)
        message["To"] = Address(addressee.name, addr_spec=planted)
        message["Subject"] = subject
        message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        message_id = make_msgid(domain=email.rpartition("@")[2])
        message["Message-ID"] = message_id
        message.set_content(body)
        return CanaryDraft(
            kind=kind,
            case_id=case,
            planted=planted,
            expected=addressee.emails[0],
            sender=email,
            team=team,
            subject=subject,
            message_id=message_id,
            raw=message.as_bytes(),
        )

    def _check(self, draft: CanaryDraft) -> Decision:
        from gatekeeper.mail import item_from_email

        item = item_from_email(draft.raw, sender=draft.sender, envelope_recipients=[draft.planted])
        return self.gate().check(item)

    def _store(self, draft: CanaryDraft, decision: Decision) -> str:
        now = utcnow()
        with self.engine.begin() as conn:
            latest = conn.execute(
                select(ITEMS.c.envelope)
                .where(ITEMS.c.channel == "email", ITEMS.c.sender == draft.sender)
                .order_by(ITEMS.c.id.desc())
                .limit(1)
            ).scalar()
            ref = new_ref()
            item_id = conn.execute(
                insert(ITEMS).returning(ITEMS.c.id),
                {
                    "ref": ref,
                    "channel": "email",
                    "sender": draft.sender,
                    "team": draft.team,
                    **sealed_subject(self.quarantine, ref, draft.subject),
                    "envelope": {
                        "mail_from": draft.sender,
                        "rcpt_to": [draft.planted],
                        "smtputf8": False,
                        "client": (latest or {}).get("client", _CLIENT),
                    },
                    "recipients": [r.as_json() for r in decision.recipients],
                    "case_ids": list(decision.case_ids),
                    "data_subjects": list(decision.data_subjects),
                    "verdict": "hold",
                    "enforced_verdict": "hold",
                    "findings": [f.as_json() for f in decision.findings],
                    "state": ItemState.HELD.value,
                    "monitor_only": False,
                    "message_id": draft.message_id,
                    "size": len(draft.raw),
                    "sha256": hashlib.sha256(draft.raw).hexdigest(),
                    "received_at": now,
                    "decided_at": now,
                    "node": node_name(self.settings),
                },
            ).scalar_one()
            conn.execute(insert(CONTENTS), sealed_content(self.quarantine, item_id, draft.raw))
            conn.execute(
                insert(CANARIES),
                {
                    "item_id": item_id,
                    "kind": draft.kind,
                    "case_id": draft.case_id,
                    "planted": draft.planted,
                    "expected": draft.expected,
                    "created_at": now,
                },
            )
            record_audit(
                conn, "canary.planted", item_id=item_id, details={"ref": ref, "kind": draft.kind}
            )
        log.info("canary planted", extra={"ref": ref, "kind": draft.kind})
        return ref

    # -- the record --------------------------------------------------------------------------

    def _senders(self) -> list[tuple[str, str, str | None]]:
        """Active staff who are not checkers: a canary never asks its nominal sender to decide."""
        checkers = select(StaffRole.user_pk).where(StaffRole.role.in_(["checker", "admin"]))
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(StaffUser.email, StaffUser.name, StaffUser.team)
                .join(StaffRole, and_(StaffRole.user_pk == StaffUser.id, StaffRole.role == "staff"))
                .where(StaffUser.active.is_(True), StaffUser.id.not_in(checkers))
                .order_by(StaffUser.id)
            )
            return [(r.email, r.name, r.team) for r in rows]

    def _random_case(self) -> str | None:
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(Case).where(Case.status == "open")
            ).scalar_one()
            if not count:
                return None
            found: str | None = conn.execute(
                select(Case.case_id)
                .where(Case.status == "open")
                .order_by(Case.id)
                .offset(self.rng.randrange(count))
                .limit(1)
            ).scalar()
            return found

    def _parties(self, case_id: str) -> list[_Party]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Party.party_id, Party.role, Party.name, Party.confidential)
                .where(Party.case_id == case_id)
                .order_by(Party.id)
            ).all()
            emails: dict[str, list[str]] = {}
            for party_id, address in conn.execute(
                select(PartyEmail.party_id, PartyEmail.address)
                .join(Party, Party.party_id == PartyEmail.party_id)
                .where(Party.case_id == case_id)
                .order_by(PartyEmail.id)
            ):
                emails.setdefault(party_id, []).append(address)
        # A confidential party is never a canary's addressee: its address stays out of canaries.
        return [
            _Party(r.party_id, case_id, r.role, r.name, tuple(emails.get(r.party_id, ())))
            for r in rows
            if not r.confidential
        ]

    def _other_case_party(self, case_id: str) -> _Party | None:
        for _ in range(5):
            other = self._random_case()
            if other is None or other == case_id:
                continue
            lay = [p for p in self._parties(other) if p.lay and p.emails]
            if lay:
                return self.rng.choice(lay)
        return None

    def _in_record(self, address: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(PartyEmail.id).where(PartyEmail.address_key == email_key(address)).limit(1)
            ).first()
        return found is not None

    def _lookalike(self, address: str) -> str | None:
        """A slip of the kind autocomplete and tired fingers make: one letter off."""
        local, _, domain = address.rpartition("@")
        slips: list[str] = []
        for i in range(1, len(local) - 1):
            if local[i] != local[i + 1]:
                slips.append(f"{local[:i]}{local[i + 1]}{local[i]}{local[i + 2 :]}@{domain}")
        if len(local) > 5:
            slips += [f"{local[:i]}{local[i + 1 :]}@{domain}" for i in range(1, len(local) - 1)]
        name, dot, rest = domain.partition(".")
        if len(name) > 4:
            slips.append(f"{local}@{name[:-2]}{name[-1]}{name[-2]}{dot}{rest}")
        slips = [s for s in slips if s.isascii() and email_key(s) != email_key(address)]
        return self.rng.choice(slips) if slips else None

    def _shuffled(self, parties: list[_Party]) -> list[_Party]:
        shuffled = list(parties)
        self.rng.shuffle(shuffled)
        return shuffled


# The envelope's client when no real message shows what a member of staff's client looks like.
_CLIENT: dict[str, Any] = {
    "address": "127.0.0.1",
    "helo": "localhost",
    "tls": True,
    "login": None,
    "protocol": "ESMTPSA",
}
