"""The one line a print job's state shows in CUPS (`lpstat -l`, the print dialog's queue).

CUPS shows a job's message to everyone who can list the queue, and keeps the
last one on the printer too, so a held letter's message names the ref and the
kind of problem, never the addresses or names a finding quotes; a blocked
letter's shows its finding's summary (the sender must know what to remove),
except that a confidential address is never repeated there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# CUPS allows 2047 bytes; a print dialog shows far fewer.
MAX_MESSAGE = 400

_REASONS = {
    "postal_address_mismatch": "the address differs from the one the case record has",
    "recipient_unknown": "the addressee is not in the case record",
    "recipient_other_case": "the addressee belongs to another case than the letter is about",
    "content_other_case": "the letter mentions another case",
    "attachment_other_case": "the letter mentions another case",
    "contact_not_allowed": "the case record says not to write to the addressee directly",
    "display_name_mismatch": "the name does not match the address",
    "confidential_address_leak": "the letter carries a confidential address",
}


def _reason(finding: Mapping[str, Any]) -> str:
    check = str(finding.get("check", ""))
    if check == "unreadable_content":
        evidence = finding.get("evidence") or {}
        return str(evidence.get("problem") or "the letter could not be read")
    return _REASONS.get(check, check.replace("_", " ") or "a check")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "\u2026"


def held_message(ref: str, findings: Sequence[Mapping[str, Any]]) -> str:
    reason = _reason(findings[0]) if findings else "it needs a second check"
    return _clip(
        f"Gatekeeper: held for a second check (ref {ref}): {reason}. It prints once a checker "
        "approves it."
    )


def blocked_message(ref: str, findings: Sequence[Mapping[str, Any]]) -> str:
    top = findings[0] if findings else {}
    if top.get("check") == "confidential_address_leak":
        summary = (
            "it carries a party's confidential contact details to a party they are withheld "
            "from; remove them"
        )
    else:
        summary = str(top.get("summary") or _reason(top))
    return _clip(f"Gatekeeper: blocked, not printed (ref {ref}): {summary}")


def refused_message(ref: str, state: str) -> str:
    return _clip(f"Gatekeeper: not printed (ref {ref}): the letter was {state} at its check")
