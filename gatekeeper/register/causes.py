"""What a register entry is, what caused it, and which Cabinet Office category it falls in.

The cause of an automatic near-miss is read from the checks that fired, by
`CHECK_CAUSES`: the first row whose check fired names the cause, so the order
is the precedence when several fired (a leaked confidential address matters
most; then a recipient who is a party of another case, whose wrong salutation or
display name is a symptom of the same slip; then the address itself; then what
was attached or written). A check
not in the table (an unknown recipient, a recipient not to be contacted,
unreadable content, a letter's address block, a site's own check) is `other`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class EntryKind(StrEnum):
    NEAR_MISS = "near_miss"  # caught before it left: blocked, returned, corrected, ...
    INCIDENT = "incident"  # something got through
    EVENT = "event"  # no breach, but it cost an investigation

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]


_KIND_LABELS = {
    EntryKind.NEAR_MISS: "near miss",
    EntryKind.INCIDENT: "incident",
    EntryKind.EVENT: "event",
}


class EntrySource(StrEnum):
    """Where an entry came from: a fact in the store the sync found, or a person."""

    BLOCKED = "blocked"  # the gate blocked an item
    RETURNED = "returned"  # a checker returned a held item to its sender
    CORRECTED = "corrected"  # a checker sent a held item to the record's address instead
    MISSED_CANARY = "missed_canary"  # a checker approved a planted mistake
    SCAN_ALARM = "scan_alarm"  # the scan station caught a page in the wrong envelope
    MANUAL = "manual"  # entered by a person

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class Cause(StrEnum):
    AUTOCOMPLETE = "autocomplete"
    LOOKALIKE_ADDRESS = "lookalike_address"
    WRONG_ATTACHMENT = "wrong_attachment"
    WRONG_CONTENT = "wrong_content"
    WRONG_ENVELOPE = "wrong_envelope"
    CONFIDENTIAL_ADDRESS = "confidential_address"
    VISIBLE_RECIPIENTS = "visible_recipients"
    OTHER = "other"

    @property
    def label(self) -> str:
        return _CAUSE_LABELS[self]


_CAUSE_LABELS = {
    Cause.AUTOCOMPLETE: "autocomplete",
    Cause.LOOKALIKE_ADDRESS: "look-alike address",
    Cause.WRONG_ATTACHMENT: "wrong attachment",
    Cause.WRONG_CONTENT: "wrong content",
    Cause.WRONG_ENVELOPE: "wrong envelope",
    Cause.CONFIDENTIAL_ADDRESS: "confidential address",
    Cause.VISIBLE_RECIPIENTS: "visible recipients",
    Cause.OTHER: "other",
}


class Category(StrEnum):
    """The Cabinet Office scheme for reporting personal data incidents."""

    LOSS_INSIDE = "I"
    LOSS_OUTSIDE = "II"
    INSECURE_DISPOSAL = "III"
    UNAUTHORISED_DISCLOSURE = "IV"
    OTHER = "V"

    @property
    def label(self) -> str:
        return f"{self.value} {_CATEGORY_LABELS[self]}"


_CATEGORY_LABELS = {
    Category.LOSS_INSIDE: "loss inside premises",
    Category.LOSS_OUTSIDE: "loss outside premises",
    Category.INSECURE_DISPOSAL: "insecure disposal",
    Category.UNAUTHORISED_DISCLOSURE: "unauthorised disclosure",
    Category.OTHER: "other",
}

# Check name -> cause, in order of precedence (see the module's docstring).
CHECK_CAUSES: tuple[tuple[str, Cause], ...] = (
    ("confidential_address_leak", Cause.CONFIDENTIAL_ADDRESS),
    ("recipient_other_case", Cause.AUTOCOMPLETE),
    ("recipient_lookalike", Cause.LOOKALIKE_ADDRESS),
    ("display_name_mismatch", Cause.LOOKALIKE_ADDRESS),
    # a letter whose printed address is near, but not, the record's: a look-alike on paper
    ("postal_address_mismatch", Cause.LOOKALIKE_ADDRESS),
    ("attachment_other_case", Cause.WRONG_ATTACHMENT),
    ("content_other_case", Cause.WRONG_CONTENT),
    ("visible_recipients", Cause.VISIBLE_RECIPIENTS),
)

# Every automatic near-miss was a disclosure to the wrong person, prevented.
NEAR_MISS_CATEGORY = Category.UNAUTHORISED_DISCLOSURE


def cause_of(checks: Iterable[str]) -> Cause:
    """The cause of a near-miss whose findings came from `checks`."""
    fired = set(checks)
    return next((cause for name, cause in CHECK_CAUSES if name in fired), Cause.OTHER)


def label_of(value: str) -> str:
    """A kind's, cause's or category's label for people; an unknown value as it is."""
    for enum in (EntryKind, Cause, Category, EntrySource):
        try:
            return str(enum(value).label)
        except ValueError:
            continue
    return value


# Severities of the findings that made an item wait or stop (not `info`).
ACTING_SEVERITIES = frozenset({"hold", "block"})


def acting_checks(findings: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """The checks whose findings held or blocked an item, most severe first, once each."""
    return list(
        dict.fromkeys(
            str(f.get("check")) for f in findings or () if f.get("severity") in ACTING_SEVERITIES
        )
    )
