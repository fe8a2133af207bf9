"""Fail closed: whatever could not be read is held for a person, with the reason."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gatekeeper.checks.context import CheckContext, describe_party
from gatekeeper.checks.registry import check
from gatekeeper.decision import Finding
from gatekeeper.item import Channel


def recipients_sentence(ctx: CheckContext) -> str:
    """`it goes to a@x (Jane Smith (applicant, case 853206)), b@y (not in the record)`."""
    parts = []
    for view in ctx.external:
        who = describe_party(view.owners[0]) if view.owners else "not in the record"
        parts.append(f"{view.label} ({who})")
    if not parts and ctx.item.channel is Channel.POST:
        return "its addressee could not be read"
    return "it goes to " + ", ".join(parts) if parts else "it has no external recipient"


@check(
    "unreadable_content",
    "Something in the item could not be analysed (encrypted, corrupt or unknown format, broken "
    "MIME): a person must look at it.",
)
def unreadable_content(ctx: CheckContext, settings: Mapping[str, Any]) -> Iterator[Finding]:
    to = recipients_sentence(ctx)
    for problem in ctx.item.problems:
        yield Finding(
            check="unreadable_content",
            summary=f"{problem}; a person must read it before it goes ({to})",
            evidence={"where": "message", "problem": problem},
        )
    for attachment in ctx.item.all_attachments():
        if attachment.problem:
            yield Finding(
                check="unreadable_content",
                summary=(
                    f"attachment {attachment.name}: {attachment.problem}; a person must read it "
                    f"before it goes ({to})"
                ),
                evidence={
                    "where": attachment.name,
                    "content_type": attachment.content_type,
                    "problem": attachment.problem,
                },
            )
