"""Checks on a letter's address block: is it the address the record has for the addressee?

The rule itself (exact postcode, agreeing house numbers, similar lines and
name) is `gatekeeper.addressee`; the context applies it to every postal
recipient. This check speaks when the block and the record disagree: the
name is a party's but the address is not theirs, the address is a party's
but the name is somebody else's, or the postcode is a party's but the house
is not. A block that matches nobody at all is `recipient_unknown`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gatekeeper.addressee import format_address, name_similarity, parties_named
from gatekeeper.casebook import PartyEntry
from gatekeeper.checks.context import CheckContext, RecipientView, describe_party
from gatekeeper.checks.registry import check
from gatekeeper.decision import Finding
from gatekeeper.item import RecipientKind

# A postcode's parties are named as the expected addressees only when this few live there.
_MAX_AT_POSTCODE = 3


@dataclass(frozen=True)
class Expectation:
    """Whom the record would have expected a letter like this to be addressed to, and why."""

    reason: str  # "named", "resident" or "at_postcode"
    parties: tuple[PartyEntry, ...]


def postal_views(ctx: CheckContext) -> list[RecipientView]:
    return [
        v
        for v in ctx.recipients
        if v.recipient.kind is RecipientKind.POSTAL and v.recipient.postal is not None
    ]


def expectation(ctx: CheckContext, view: RecipientView) -> Expectation | None:
    """For an addressee the record does not confirm: the parties it most likely meant."""
    postal = view.recipient.postal
    if postal is None or view.owners:
        return None
    residents = tuple(dict.fromkeys(m.party for m in view.postal_matches))
    cases = set(ctx.primary_cases) | {p.case_id for p in residents}
    named = list(parties_named(postal, ctx.index))
    threshold = ctx.postal_rule.min_name_similarity
    for case_id in sorted(cases):  # initials and small slips: "Mr M Smith" for Mark Smith
        named.extend(
            p
            for p in ctx.index.case_parties(case_id)
            if p not in named and name_similarity(postal.name, p) >= threshold
        )
    relevant = [p for p in named if p.case_id in cases]
    if not relevant and len(named) <= ctx.distinctive_name_parties:
        relevant = named
    if relevant:
        return Expectation("named", tuple(dict.fromkeys(relevant)))
    if residents:
        return Expectation("resident", residents)
    if not postal.postcode:
        return None
    at_postcode = [m.party for m in ctx.index.parties_at(postal.postcode)]
    preferred = [p for p in at_postcode if p.case_id in ctx.primary_cases]
    chosen = preferred or (at_postcode if len(at_postcode) <= _MAX_AT_POSTCODE else [])
    return Expectation("at_postcode", tuple(dict.fromkeys(chosen))) if chosen else None


def addresses_of(party: PartyEntry) -> str:
    """`3 Oak Road, Bradford BD1 4QQ for Mark Smith`, or that the record has none."""
    if not party.postal_addresses:
        return f"no postal address for {party.name}"
    shown = " or ".join(format_address(a.lines, a.postcode) for a in party.postal_addresses)
    return f"{shown} for {party.name}"


def _expected_list(parties: tuple[PartyEntry, ...]) -> list[str]:
    return [
        f"{format_address(a.lines, a.postcode)} ({p.name})"
        for p in parties
        for a in p.postal_addresses
    ]


@check(
    "postal_address_mismatch",
    "A letter's address block differs from the record: the name is a party's but the address "
    "is not theirs, or the address is a party's but the name is someone else's.",
    min_line_similarity=85,
    min_name_similarity=85,
)
def postal_address_mismatch(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    for view in postal_views(ctx):
        expected = expectation(ctx, view)
        if expected is None:
            continue
        parties = expected.parties[:3]
        record = "; ".join(addresses_of(p) for p in parties)
        if expected.reason == "named":
            summary = f"the letter is addressed to {view.label}, but the record has {record}"
        elif expected.reason == "resident":
            who = ", ".join(describe_party(p) for p in parties)
            summary = (
                f"the letter is addressed to {view.label}, but the record has that address for "
                f"{who}, not for the person named: the record has {record}"
            )
        else:
            summary = (
                f"the letter is addressed to {view.label}: no party in the record lives there, "
                f"but the record has {record}"
            )
        yield Finding(
            check="postal_address_mismatch",
            summary=summary,
            evidence={
                "addressee": view.label,
                "reason": expected.reason,
                "party_ids": [p.party_id for p in parties],
                "expected": _expected_list(parties),
            },
            data_subjects=tuple(p.party_id for p in parties if not p.is_professional),
        )
