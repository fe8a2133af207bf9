"""What the gate decides about one item, and why: the shape every channel acts on."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gatekeeper.item import Channel, RecipientKind


class Severity(StrEnum):
    """How much a finding matters on a channel; the policy sets it, the verdict is the worst."""

    INFO = "info"
    HOLD = "hold"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.HOLD: 1, Severity.BLOCK: 2}


class Verdict(StrEnum):
    RELEASE = "release"
    HOLD = "hold"
    BLOCK = "block"

    @classmethod
    def of(cls, severity: Severity | None) -> Verdict:
        if severity is Severity.BLOCK:
            return cls.BLOCK
        if severity is Severity.HOLD:
            return cls.HOLD
        return cls.RELEASE


@dataclass(frozen=True)
class Finding:
    """One problem a check found: a sentence a member of staff acts on, and the evidence.

    `variant` lets the policy grade a check's findings (for instance a recipient
    nobody knows, with or without sensitive content); None is the plain case.
    """

    check: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    data_subjects: tuple[str, ...] = ()
    variant: str | None = None


@dataclass(frozen=True)
class RatedFinding:
    finding: Finding
    severity: Severity
    forced: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.finding.check,
            "severity": self.severity.value,
            "summary": self.finding.summary,
            "evidence": self.finding.evidence,
        }
        if self.finding.variant:
            out["variant"] = self.finding.variant
        return out


@dataclass(frozen=True)
class ResolvedRecipient:
    """A recipient with the party (and case) the record says it is, where it is one."""

    address: str
    kind: RecipientKind
    party_id: str | None = None
    case_id: str | None = None
    internal: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind.value,
            "party_id": self.party_id,
            "case_id": self.case_id,
        }


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    channel: Channel
    findings: tuple[RatedFinding, ...]  # most severe first
    case_ids: tuple[str, ...]
    recipients: tuple[ResolvedRecipient, ...]
    data_subjects: tuple[str, ...]
    # In monitor-only mode the verdict is release (unless forced); this is what it would have been.
    enforced_verdict: Verdict | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> RatedFinding | None:
        return self.findings[0] if self.findings else None

    def as_json(self) -> dict[str, Any]:
        """The `gatekeeper check --json` object (spec: shared/spec/check-cli.md)."""
        out: dict[str, Any] = {
            "verdict": self.verdict.value,
            "channel": self.channel.value,
            "case_ids": list(self.case_ids),
            "recipients": [r.as_json() for r in self.recipients],
            "findings": [f.as_json() for f in self.findings],
            "data_subjects": list(self.data_subjects),
        }
        if self.enforced_verdict is not None and self.enforced_verdict is not self.verdict:
            out["monitor_only"] = {"enforced_verdict": self.enforced_verdict.value}
        return out
