"""The forced block: a party's withheld contact details reaching a party they are withheld from."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gatekeeper.analysis.mentions import MentionKind, Source
from gatekeeper.casebook import PartyEntry
from gatekeeper.checks.context import CheckContext, RecipientView, describe_party
from gatekeeper.checks.registry import check
from gatekeeper.contact import address_key, email_key
from gatekeeper.decision import Finding


@dataclass(frozen=True)
class Leak:
    what: str  # "the postcode LS6 2AB", "the address line 14 Mill Lane", "the email …"
    where: str  # "body", "attachment report.pdf", "the To/Cc line"


def _identifying_lines(party: PartyEntry) -> list[str]:
    """Address lines that locate a home: those with a number (a town alone does not)."""
    return [
        line for postal in party.postal_addresses for line in postal.lines if re.search(r"\d", line)
    ]


def _folded(ctx: CheckContext, source: Source) -> str:
    return f" {address_key([ctx.text_of(source)])} "


def _leaks(ctx: CheckContext, party: PartyEntry, barred: list[RecipientView]) -> list[Leak]:
    barred_postcodes = {
        a.postcode for view in barred for p in view.owners for a in p.postal_addresses
    }
    leaks: list[Leak] = []
    postcodes = {a.postcode for a in party.postal_addresses} - barred_postcodes
    for mention in ctx.annotations.of(MentionKind.POSTCODE):
        if mention.value in postcodes:
            leaks.append(Leak(f"the postcode {mention.value}", str(mention.source)))
    emails = {email_key(a) for a in party.emails}
    for mention in ctx.annotations.of(MentionKind.EMAIL_ADDRESS):
        if mention.value in emails:
            leaks.append(Leak(f"the email address {mention.value}", str(mention.source)))
    lines = [(line, f" {address_key([line])} ") for line in _identifying_lines(party)]
    for source in ctx.annotations.texts:
        folded = _folded(ctx, source)
        for line, key in lines:
            if key.strip() and key in folded:
                leaks.append(Leak(f"the address line '{line}'", str(source)))
    for view in ctx.external:
        if view.recipient.kind.visible and view.key in emails:
            leaks.append(Leak(f"the email address {view.label}", "To/Cc line"))
    return list(dict.fromkeys(leaks))


@check(
    "confidential_address_leak",
    "A party's withheld address, postcode or email is in content going to a party it is "
    "withheld from, or is visible in To/Cc to that party.",
)
def confidential_address_leak(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    by_party = {p.party_id: v for v in ctx.external for p in v.owners}
    for view in ctx.recipients:  # a letter's addressee, matched by postal address
        for match in view.postal_matches:
            by_party.setdefault(match.party.party_id, view)
    if not by_party:
        return
    cases = {ctx.index.parties[p].case_id for p in by_party if p in ctx.index.parties}
    for case_id in sorted(cases):
        for party in ctx.index.case_parties(case_id):
            barred_ids = sorted(party.withheld_from & by_party.keys())
            if not barred_ids:
                continue
            barred = list(dict.fromkeys(by_party[p] for p in barred_ids))
            leaks = _leaks(ctx, party, barred)
            if not leaks:
                continue
            who = "; ".join(
                f"{by_party[p].label or 'the addressee'} ({describe_party(ctx.index.parties[p])})"
                for p in barred_ids
            )
            found = "; ".join(f"{leak.what} in the {leak.where}" for leak in leaks[:4])
            yield Finding(
                check="confidential_address_leak",
                summary=(
                    f"{party.name}'s confidential contact details are going to {who}, from whom "
                    f"the record withholds them: {found}. Remove them; {party.name}'s details must "
                    "never reach that party"
                ),
                evidence={
                    "party_id": party.party_id,
                    "withheld_from": barred_ids,
                    "found": [{"what": leak.what, "where": leak.where} for leak in leaks],
                    "expected": "no contact details of " + party.name,
                },
                data_subjects=(party.party_id,),
            )
