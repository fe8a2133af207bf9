"""The gate: analysis, checks and policy for one item. Every channel calls this.

Built once per process (the case index, the language pipeline and the policy
load once), then `check(item)` is pure with respect to the store: it reads the
in-memory index only, changes nothing, and returns a `Decision`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select

from gatekeeper.addressee import DEFAULT_POSTAL_RULE, PostalRule
from gatekeeper.analysis.mentions import SourceKind
from gatekeeper.analysis.pipeline import Analyzer
from gatekeeper.casebook import CaseIndex
from gatekeeper.checks.context import CheckContext, RecipientView
from gatekeeper.checks.registry import CheckSpec, registered_checks
from gatekeeper.config import Settings
from gatekeeper.decision import Decision, Finding, ResolvedRecipient, Verdict
from gatekeeper.item import Item
from gatekeeper.policy import Policy, load_policy
from gatekeeper.store.models import StaffUser

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateSetup:
    """Context settings the checks share, taken from the policy's check settings."""

    distinctive_name_parties: int
    lookalike_similarity: float
    postal_rule: PostalRule = DEFAULT_POSTAL_RULE

    @classmethod
    def from_policy(cls, policy: Policy) -> GateSetup:
        content = policy.settings_for("content_other_case")
        lookalike = policy.settings_for("recipient_lookalike")
        postal = policy.settings_for("postal_address_mismatch")
        return cls(
            distinctive_name_parties=int(content.get("distinctive_name_parties", 2)),
            lookalike_similarity=float(lookalike.get("min_similarity", 88)),
            postal_rule=PostalRule(
                min_line_similarity=float(postal.get("min_line_similarity", 85)),
                min_name_similarity=float(postal.get("min_name_similarity", 85)),
            ),
        )


class Gate:
    def __init__(
        self,
        index: CaseIndex,
        policy: Policy,
        analyzer: Analyzer,
        *,
        internal_domains: Iterable[str] = (),
    ) -> None:
        self.index = index
        self.policy = policy
        self.analyzer = analyzer
        self.internal_domains = tuple(d.casefold() for d in internal_domains)
        self.setup = GateSetup.from_policy(policy)
        specs = registered_checks()
        self.checks: list[CheckSpec] = [specs[n] for n in policy.enabled_checks() if n in specs]

    @classmethod
    def from_store(
        cls, engine: Engine, settings: Settings, *, policy: Policy | None = None
    ) -> Gate:
        """Load the case record, staff names, language pipeline and policy once."""
        index = CaseIndex.from_store(engine)
        with engine.connect() as conn:
            staff_names = list(conn.execute(select(StaffUser.name)).scalars())
        policy = policy or load_policy(settings.policy_file or None)
        analyzer = Analyzer(index, staff_names=staff_names)
        return cls(index, policy, analyzer, internal_domains=settings.internal_domains)

    def check(self, item: Item) -> Decision:
        started = time.perf_counter()
        if item.recipients and all(self._internal(r.address) for r in item.recipients):
            return self._internal_release(item, started)
        annotations = self.analyzer.annotate(item)
        analysed = time.perf_counter()
        ctx = CheckContext.build(
            item,
            self.index,
            annotations,
            internal_domains=self.internal_domains,
            distinctive_name_parties=self.setup.distinctive_name_parties,
            lookalike_similarity=self.setup.lookalike_similarity,
            postal_rule=self.setup.postal_rule,
        )
        findings: list[Finding] = []
        for spec in self.checks:
            findings.extend(spec.run(ctx, self.policy.settings_for(spec.name)))
        checked = time.perf_counter()
        rated = self.policy.rate(item.channel, findings)
        verdict, enforced = self.policy.verdict(rated)
        return Decision(
            verdict=verdict,
            channel=item.channel,
            findings=tuple(rated),
            case_ids=_case_ids(ctx),
            recipients=tuple(_resolved(view, ctx) for view in ctx.recipients),
            data_subjects=_data_subjects(ctx, findings),
            enforced_verdict=enforced,
            timings_ms={
                "analysis": (analysed - started) * 1000,
                "checks": (checked - analysed) * 1000,
                "total": (time.perf_counter() - started) * 1000,
            },
        )

    def _internal(self, address: str | None) -> bool:
        domain = (address or "").rpartition("@")[2].casefold()
        return any(domain == d or domain.endswith("." + d) for d in self.internal_domains)

    def _internal_release(self, item: Item, started: float) -> Decision:
        return Decision(
            verdict=Verdict.RELEASE,
            channel=item.channel,
            findings=(),
            case_ids=(),
            recipients=tuple(
                ResolvedRecipient(r.address or "", r.kind, internal=True) for r in item.recipients
            ),
            data_subjects=(),
            enforced_verdict=Verdict.RELEASE,
            timings_ms={"total": (time.perf_counter() - started) * 1000},
        )


def _case_ids(ctx: CheckContext) -> tuple[str, ...]:
    """The cases the content is about: what the message says first, then the rest."""
    everything = ctx.strong_cases(list(SourceKind))
    first = list(ctx.primary_cases)
    return tuple(first + sorted(c for c in everything if c not in ctx.primary_cases))


def _resolved(view: RecipientView, ctx: CheckContext) -> ResolvedRecipient:
    owner = next(
        (p for p in view.owners if p.case_id in ctx.primary_cases),
        view.owners[0] if view.owners else None,
    )
    if owner is None and view.postal_matches:
        owner = view.postal_matches[0].party
    return ResolvedRecipient(
        address=view.recipient.address or view.label,
        kind=view.recipient.kind,
        party_id=owner.party_id if owner else None,
        case_id=owner.case_id if owner else None,
        internal=view.internal,
    )


def _data_subjects(ctx: CheckContext, findings: Sequence[Finding]) -> tuple[str, ...]:
    """Lay parties whose personal data the item carries: named, addressed or found."""
    subjects = set(ctx.named_lay_parties())
    for view in ctx.external:
        subjects.update(p.party_id for p in view.owners if not p.is_professional)
    for finding in findings:
        subjects.update(finding.data_subjects)
    return tuple(sorted(subjects))
