"""Checks on what an item says: content or an attachment about another case."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gatekeeper.analysis.mentions import SourceKind
from gatekeeper.checks.context import CaseEvidence, CheckContext
from gatekeeper.checks.registry import check
from gatekeeper.decision import Finding

TEXT_SOURCES = (SourceKind.SUBJECT, SourceKind.BODY, SourceKind.QUOTED)


def _recipients_case(ctx: CheckContext) -> str:
    return ", ".join(sorted(ctx.recipient_cases))


def _where(ctx: CheckContext, case_id: str, kinds: tuple[SourceKind, ...]) -> str:
    places = [
        str(source)
        for source, per_case in ctx.evidence.items()
        if source.kind in kinds and case_id in per_case
    ]
    return " and ".join(dict.fromkeys(places)) or "content"


def _finding(
    name: str, ctx: CheckContext, where: str, evidence: CaseEvidence, **extra: Any
) -> Finding:
    return Finding(
        check=name,
        summary=(
            f"the {where} is about {evidence.describe(ctx.index)}, but the recipients belong to "
            f"case {_recipients_case(ctx)}: {ctx.contacts_sentence(evidence.case_id)}"
        ),
        evidence={
            "case_id": evidence.case_id,
            "recipient_case_ids": sorted(ctx.recipient_cases),
            "references": sorted({m.text for m in evidence.references}),
            "party_ids": sorted(evidence.lay_parties),
            "expected": ctx.contacts_of_case(evidence.case_id),
            **extra,
        },
        data_subjects=tuple(sorted(evidence.lay_parties)),
    )


@check(
    "content_other_case",
    "The subject or body (including quoted earlier messages) is about another case than the "
    "recipients belong to.",
    distinctive_name_parties=2,
)
def content_other_case(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    if not ctx.recipient_cases:
        return  # nobody in the record receives it: recipient_unknown says so
    primary = set(ctx.primary_cases)
    recipients_wrong = bool(primary) and not (primary & ctx.recipient_cases)
    for case_id, evidence in ctx.strong_cases(TEXT_SOURCES).items():
        if case_id in ctx.recipient_cases:
            continue
        if recipients_wrong and case_id in primary:
            continue  # the whole message is about it: recipient_other_case says so
        yield _finding("content_other_case", ctx, _where(ctx, case_id, TEXT_SOURCES), evidence)


@check(
    "attachment_other_case",
    "An attachment is about another case than the recipients belong to.",
    distinctive_name_parties=2,
)
def attachment_other_case(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    if not ctx.recipient_cases:
        return
    primary = set(ctx.primary_cases)
    recipients_wrong = bool(primary) and not (primary & ctx.recipient_cases)
    for source, per_case in ctx.evidence.items():
        if source.kind is not SourceKind.ATTACHMENT:
            continue
        for case_id, evidence in per_case.items():
            if case_id in ctx.recipient_cases or not evidence.strong:
                continue
            if recipients_wrong and case_id in primary:
                continue  # it matches the message: the recipients are wrong
            yield _finding(
                "attachment_other_case",
                ctx,
                f"attachment {source.name}",
                evidence,
                attachment=source.name,
            )
