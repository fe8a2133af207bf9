"""Names that disagree with addresses: a display name or salutation naming another party."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from gatekeeper.analysis.mentions import SourceKind
from gatekeeper.casebook import PartyEntry, name_key
from gatekeeper.checks.context import CheckContext, RecipientView, describe_party
from gatekeeper.checks.registry import check
from gatekeeper.contact import email_key
from gatekeeper.decision import Finding

_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "lady"})
_GENERIC = frozenset(
    {"all", "everyone", "sir", "madam", "sirs", "colleagues", "team", "both", "there",
     "sir madam", "sir or madam", "parents", "carers", "you", "friends", "colleague"}
)  # fmt: skip
_SALUTATION = re.compile(
    r"^\s*(?:dear|hi|hello|hey|good\s+(?:morning|afternoon|evening))\b[ \t]+"
    r"(?P<who>[^,\n:;!]{1,80}?)\s*[,:;!]?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SALUTATION_LINES = 6  # a greeting stands at the top of what the sender wrote
_ADDRESS_IN_NAME = re.compile(r"[^\s<>\"']+@[^\s<>\"']+")


def _clean_display_name(name: str) -> str:
    name = re.sub(r"\([^)]*\)|\[[^]]*\]", " ", name)  # "(Shah & Co)", "[External]"
    name = name.replace('"', " ").replace("'", " ").strip()
    if "," in name:  # "Smith, Jane"
        last, _, first = name.partition(",")
        name = f"{first.strip()} {last.strip()}"
    words = [w for w in name.split() if w.casefold().rstrip(".") not in _TITLES]
    return " ".join(words)


def _own_address(view: RecipientView, parties: list[PartyEntry]) -> bool:
    return any(email_key(a) == view.key for p in parties for a in p.emails) or any(
        p in view.owners for p in parties
    )


def _expected(parties: list[PartyEntry]) -> str:
    with_address = [p for p in parties if p.emails]
    if not with_address:
        return f"the record has no email address for {parties[0].name}"
    return "the record has " + "; ".join(
        f"{', '.join(p.emails)} for {p.name}" for p in with_address[:3]
    )


def _named_parties(ctx: CheckContext, name: str) -> list[PartyEntry]:
    """Parties a name refers to: those of the item's own cases, or a rare name's owners."""
    parties = ctx.index.parties_named(name)
    relevant = [p for p in parties if p.case_id in ctx.relevant_cases]
    if relevant:
        return relevant
    return parties if len(parties) <= ctx.distinctive_name_parties else []


@check(
    "display_name_mismatch",
    'A recipient\'s display name, or the salutation ("Dear Jane"), names a party whose verified '
    "address is not the one used.",
)
def display_name_mismatch(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    yield from _display_names(ctx)
    yield from _salutations(ctx)


def _display_names(ctx: CheckContext) -> Iterator[Finding]:
    for view in ctx.external:
        shown = (view.recipient.display_name or "").strip()
        if not shown or not view.key:
            continue
        address_shown = _ADDRESS_IN_NAME.search(shown)
        if address_shown:
            parties = ctx.index.owners(address_shown.group(0).strip(".,;"))
            label = address_shown.group(0)
        else:
            label = _clean_display_name(shown)
            parties = _named_parties(ctx, label) if len(label.split()) >= 2 else []
            if not parties and not view.known and len(label.split()) >= 2:
                # A new address filed under a parent's or child's own name is the classic
                # unverified contact, however common the name.
                parties = [
                    p for p in ctx.index.parties_named(label) if p.emails and not p.is_professional
                ]
        if not parties or _own_address(view, parties):
            continue
        whose = f", which is {describe_party(view.owners[0])}'s address" if view.owners else ""
        yield Finding(
            check="display_name_mismatch",
            summary=(f"the name '{label}' is shown for {view.label}{whose}; {_expected(parties)}"),
            evidence={
                "recipient": view.label,
                "display_name": shown,
                "named_party_ids": sorted(p.party_id for p in parties),
                "expected": sorted({a for p in parties for a in p.emails}),
            },
            data_subjects=tuple(sorted(p.party_id for p in parties if not p.is_professional)),
        )


def _greeted_names(text: str) -> list[str]:
    head = "\n".join([line for line in text.splitlines() if line.strip()][:_SALUTATION_LINES])
    names = []
    for match in _SALUTATION.finditer(head):
        for part in re.split(r"\s+(?:and|&)\s+|\s*,\s*|\s*/\s*", match.group("who")):
            cleaned = part.strip().rstrip(".")
            if cleaned and name_key(cleaned) not in _GENERIC:
                names.append(cleaned)
    return names


def _greeted_parties(ctx: CheckContext, greeted: str) -> list[PartyEntry]:
    words = greeted.split()
    titled = words[0].casefold().rstrip(".") in _TITLES
    words = [w for w in words if w.casefold().rstrip(".") not in _TITLES]
    if not words:
        return []
    candidates = [p for c in ctx.relevant_cases for p in ctx.index.case_parties(c)]
    wanted = name_key(" ".join(words))
    found = []
    for party in candidates:
        for name in party.names:
            key = name_key(name).split()
            if not key:
                continue
            whole = len(words) >= 2 and name_key(name) == wanted
            if whole or (len(words) == 1 and (key[-1] if titled else key[0]) == wanted):
                found.append(party)
    return list(dict.fromkeys(found))


def _salutations(ctx: CheckContext) -> Iterator[Finding]:
    visible = [v for v in ctx.external if v.recipient.kind.visible]
    if not visible:
        return
    body = next((t for s, t in ctx.annotations.texts.items() if s.kind is SourceKind.BODY), None)
    text = body if body is not None else ctx.item.new_text
    for greeted in _greeted_names(text):
        parties = _greeted_parties(ctx, greeted)
        if not parties or not any(p.emails for p in parties):
            continue
        if any(_own_address(v, parties) for v in visible):
            continue
        to = ", ".join(v.label for v in visible)
        yield Finding(
            check="display_name_mismatch",
            summary=f"the message greets '{greeted}', but goes to {to}; {_expected(parties)}",
            evidence={
                "salutation": greeted,
                "recipients": [v.label for v in visible],
                "named_party_ids": sorted(p.party_id for p in parties),
                "expected": sorted({a for p in parties for a in p.emails}),
            },
            data_subjects=tuple(sorted(p.party_id for p in parties if not p.is_professional)),
        )
