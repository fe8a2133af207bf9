"""Checks on who an item goes to: wrong case, look-alike, unknown, not to be contacted, visible."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rapidfuzz import fuzz

from gatekeeper.casebook import AddressMatch
from gatekeeper.checks.context import (
    CheckContext,
    RecipientView,
    describe_party,
    settings_int,
)
from gatekeeper.checks.postal import expectation
from gatekeeper.checks.registry import check
from gatekeeper.decision import Finding


@check(
    "recipient_other_case",
    "A recipient is a party of a different case from the one the content is about.",
)
def recipient_other_case(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    known = [r for r in ctx.external if r.known]
    primary = ctx.primary_cases
    if primary:
        about = set(primary)
        for view in known:
            if view.cases & about:
                continue
            owner = view.owners[0]
            case_id, evidence = next(iter(primary.items()))
            yield Finding(
                check="recipient_other_case",
                summary=(
                    f"{view.label} is {describe_party(owner)}, but this message is about "
                    f"{evidence.describe(ctx.index)}: {ctx.contacts_sentence(case_id)}"
                ),
                evidence={
                    "recipient": view.label,
                    "recipient_party_id": owner.party_id,
                    "recipient_case_id": owner.case_id,
                    "content_case_ids": sorted(primary),
                    "expected": ctx.contacts_of_case(case_id),
                },
                data_subjects=tuple(sorted(evidence.lay_parties)),
            )
        return
    # Nothing says what the message is about: a visible recipient sharing no case with the
    # others. (Bcc is how a circular to several families should go.)
    known = [v for v in known if v.recipient.kind.visible]
    odd = [v for v in known if not any(v.cases & o.cases for o in known if o is not v)]
    if len(known) < 2 or not odd:
        return
    rest = [v for v in known if v not in odd]
    if not rest:  # every recipient is from a different case: one finding says it
        described = "; ".join(f"{v.label} is {describe_party(v.owners[0])}" for v in known)
        yield Finding(
            check="recipient_other_case",
            summary=f"the recipients belong to different cases: {described}",
            evidence={"recipients": {v.label: sorted(v.cases) for v in known}},
        )
        return
    main_case = min(c for v in rest for c in v.cases)
    for view in odd:
        yield Finding(
            check="recipient_other_case",
            summary=(
                f"{view.label} is {describe_party(view.owners[0])}, but the other recipients "
                f"belong to case {main_case}: {ctx.contacts_sentence(main_case)}"
            ),
            evidence={
                "recipient": view.label,
                "recipient_case_ids": sorted(view.cases),
                "other_case_ids": sorted({c for o in rest for c in o.cases}),
                "expected": ctx.contacts_of_case(main_case),
            },
        )


def lookalikes(ctx: CheckContext, view: RecipientView, min_similarity: float) -> list[AddressMatch]:
    """Verified addresses `view` looks like; those of the item's own cases first."""
    if view.known or view.internal or "@" not in view.key:
        return []
    matches = ctx.index.similar_addresses(view.key, min_similarity, limit=5)
    relevant = ctx.relevant_cases
    return sorted(
        matches, key=lambda m: (not any(p.case_id in relevant for p in m.parties), -m.similarity)
    )


@check(
    "recipient_lookalike",
    "A recipient is not in the record but looks like a party's verified address "
    "(a typo, transposed letters, a wrong domain).",
    min_similarity=88,
    internal_domain_similarity=85,
)
def recipient_lookalike(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    threshold = float(settings.get("min_similarity", 88))
    for view in ctx.external:
        matches = lookalikes(ctx, view, threshold)
        if matches:
            best = matches[0]
            party = next((p for p in best.parties if p.case_id in ctx.relevant_cases), None)
            party = party or best.parties[0]
            yield Finding(
                check="recipient_lookalike",
                summary=(
                    f"{view.label} looks like {best.address} ({party.name}, case {party.case_id}) "
                    "but is not it"
                ),
                evidence={
                    "recipient": view.label,
                    "expected": best.address,
                    "similarity": best.similarity,
                    "party_id": party.party_id,
                    "case_id": party.case_id,
                },
                data_subjects=() if party.is_professional else (party.party_id,),
            )
            continue
        domain = view.domain
        similarity = float(settings.get("internal_domain_similarity", 85))
        near = _near_internal_domain(ctx, domain, similarity)
        if near and not view.known:
            yield Finding(
                check="recipient_lookalike",
                summary=(
                    f"{view.label} is at {domain}, which looks like the organisation's own domain "
                    f"{near} but is not it"
                ),
                evidence={"recipient": view.label, "expected_domain": near, "domain": domain},
            )


def _near_internal_domain(ctx: CheckContext, domain: str, threshold: float) -> str | None:
    if not domain:
        return None
    for internal in ctx.internal_domains:
        if domain != internal and fuzz.ratio(domain, internal) >= threshold:
            return internal
    return None


@check(
    "recipient_unknown",
    "An external recipient belongs to no party in the record; judged with how sensitive the "
    "content is.",
)
def recipient_unknown(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    unknown = [v for v in ctx.external if not v.known and (v.key or v.recipient.postal)]
    if not unknown:
        return
    lookalike_threshold = float(ctx.lookalike_similarity)
    case_id = next(iter(ctx.primary_cases), None) or next(iter(sorted(ctx.recipient_cases)), None)
    expected = ctx.contacts_sentence(case_id) if case_id else "the record has no case for it"
    for view in unknown:
        if view.recipient.postal is not None:
            yield from _unknown_addressee(ctx, view, case_id)
            continue
        if lookalikes(ctx, view, lookalike_threshold) or _near_internal_domain(
            ctx, view.domain, 85.0
        ):
            continue  # recipient_lookalike says it better
        # An organisation's domain counts for less than a verified address: it says where
        # somebody works, not that they may read this family's details.
        organisation = "@" in view.key and ctx.index.is_organisation_domain(view.domain)
        at = (
            f" (though {view.domain} is a professional party's organisation)"
            if organisation
            else ""
        )
        if "@" not in view.key:
            variant = None
            reason = "is not a usable email address"
        elif ctx.sensitive:
            variant = None
            reason = (
                f"is not in the record{at}, and the message carries case details or sensitive data"
            )
        else:
            variant = "not_sensitive"
            reason = f"is not in the record{at}"
        yield Finding(
            check="recipient_unknown",
            summary=f"{view.label} {reason}: {expected}",
            evidence={
                "recipient": view.label,
                "sensitive": ctx.sensitive,
                "special_categories": sorted(ctx.annotations.special_categories()),
                "case_id": case_id,
                "organisation_domain": organisation,
                "expected": ctx.contacts_of_case(case_id) if case_id else [],
            },
            variant=variant,
        )


def _unknown_addressee(
    ctx: CheckContext, view: RecipientView, case_id: str | None
) -> Iterator[Finding]:
    """A letter to somebody the record does not know at all (neither name nor address)."""
    if expectation(ctx, view) is not None:
        return  # postal_address_mismatch says what the record expected
    expected = ctx.postal_contacts_sentence(case_id) if case_id else "the record has no case for it"
    if ctx.sensitive:
        variant = None
        reason = "is not in the record, and the letter carries case details or sensitive data"
    else:
        variant, reason = "not_sensitive", "is not in the record"
    yield Finding(
        check="recipient_unknown",
        summary=f"{view.label} {reason}: {expected}",
        evidence={
            "recipient": view.label,
            "sensitive": ctx.sensitive,
            "special_categories": sorted(ctx.annotations.special_categories()),
            "case_id": case_id,
            "expected": ctx.postal_contacts_of_case(case_id) if case_id else [],
        },
        variant=variant,
    )


@check(
    "contact_not_allowed",
    "A recipient is a party whose record says not to contact them directly.",
)
def contact_not_allowed(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    for view in ctx.external:
        barred = [p for p in view.owners if not p.contact_allowed]
        if not barred or len(barred) < len(view.owners):
            continue  # the address also belongs to a party who may be written to
        party = barred[0]
        others = [
            c
            for c in ctx.contacts_of_case(party.case_id)
            if not (c.startswith(view.key) if view.key else c.endswith(f"({party.name})"))
        ]
        instead = (
            f"the record's other addresses for case {party.case_id} are {', '.join(others[:4])}"
            if others
            else f"the record has no other address for case {party.case_id}"
        )
        yield Finding(
            check="contact_not_allowed",
            summary=(
                f"{view.label} is {describe_party(party)}, whose record says not to contact "
                f"them directly: {instead}"
            ),
            evidence={"recipient": view.label, "party_id": party.party_id, "expected": others},
            data_subjects=(party.party_id,),
        )


@check(
    "visible_recipients",
    "Several external recipients from different households can see each other's addresses in "
    "To/Cc where Bcc was meant.",
    min_households=2,
)
def visible_recipients(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    households: dict[str, list[RecipientView]] = {}
    for view in ctx.external:
        if not view.recipient.kind.visible or not view.key:
            continue
        if view.known:
            if all(p.is_professional for p in view.owners):
                continue
            household = "case " + min(p.case_id for p in view.owners if not p.is_professional)
        elif ctx.index.is_organisation_domain(view.domain):
            continue
        else:
            household = view.key
        households.setdefault(household, []).append(view)
    if len(households) < settings_int(settings, "min_households", 2):
        return
    listed = ", ".join(
        f"{v.label} ({h if h.startswith('case ') else 'not in the record'})"
        for h, views in households.items()
        for v in views
    )
    yield Finding(
        check="visible_recipients",
        summary=(
            f"recipients from {len(households)} different households can see each other's "
            f"addresses in To/Cc ({listed}): put them in Bcc or write separately"
        ),
        evidence={
            "households": {h: [v.label for v in views] for h, views in households.items()},
            "expected": "Bcc",
        },
        data_subjects=tuple(
            sorted(p.party_id for vs in households.values() for v in vs for p in v.owners)
        ),
    )
