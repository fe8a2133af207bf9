"""The parties of the cases an item concerns, with their verified contacts, for the item page.

Confidential contact details are marked with whom they are withheld from, the
same reading `gatekeeper cases show` gives, so a checker sees at a glance whose
address must not go where.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from gatekeeper.casebook import effective_withheld_from
from gatekeeper.held import HeldItem
from gatekeeper.record import PROFESSIONAL_ROLES
from gatekeeper.store.models import Case, Party

MAX_CASES = 6


@dataclass(frozen=True)
class ShownParty:
    party_id: str
    role: str
    name: str
    organisation: str | None
    emails: tuple[str, ...]
    postal: tuple[str, ...]
    withheld_from: tuple[str, ...]  # names of those the contact details are withheld from
    contact_allowed: bool
    professional: bool

    @property
    def confidential(self) -> bool:
        return bool(self.withheld_from)


@dataclass(frozen=True)
class ShownCase:
    case_id: str
    status: str
    aliases: tuple[str, ...]
    parties: tuple[ShownParty, ...]


def related_case_ids(item: HeldItem, resolved: Iterable[dict[str, Any]] = ()) -> list[str]:
    """The content's cases first, then those of the recipients and of each finding."""
    ids = list(item.case_ids)
    ids += [str(r["case_id"]) for r in resolved if r.get("case_id")]
    for finding in item.findings:
        evidence = finding.get("evidence") or {}
        for key in ("case_id", "recipient_case_id"):
            if evidence.get(key):
                ids.append(str(evidence[key]))
        for key in ("content_case_ids", "other_case_ids", "recipient_case_ids"):
            ids += [str(c) for c in evidence.get(key) or []]
    return list(dict.fromkeys(ids))


def cases_of(engine: Engine, case_ids: Iterable[str]) -> list[ShownCase]:
    wanted = list(dict.fromkeys(c for c in case_ids if c))[:MAX_CASES]
    if not wanted:
        return []
    query = (
        select(Case)
        .options(
            selectinload(Case.aliases),
            selectinload(Case.parties).selectinload(Party.emails),
            selectinload(Case.parties).selectinload(Party.postal_addresses),
        )
        .where(Case.case_id.in_(wanted))
    )
    with Session(engine) as session:
        found = {case.case_id: _shown(case) for case in session.scalars(query)}
    return [found[c] for c in wanted if c in found]


def _shown(case: Case) -> ShownCase:
    members = [(p.party_id, p.role, p.represents) for p in case.parties]
    names = {p.party_id: p.name for p in case.parties}
    parties = []
    for party in case.parties:
        withheld = effective_withheld_from(
            party.party_id, party.confidential, party.withheld_from, members
        )
        parties.append(
            ShownParty(
                party_id=party.party_id,
                role=party.role,
                name=party.name,
                organisation=party.organisation,
                emails=tuple(e.address for e in party.emails),
                postal=tuple(", ".join([*a.lines, a.postcode]) for a in party.postal_addresses),
                withheld_from=tuple(sorted(names.get(p, p) for p in withheld)),
                contact_allowed=party.contact_allowed,
                professional=party.role in PROFESSIONAL_ROLES,
            )
        )
    return ShownCase(
        case_id=case.case_id,
        status=case.status,
        aliases=tuple(a.alias for a in case.aliases),
        parties=tuple(parties),
    )
