"""The policy as a table: finding + channel -> severity -> verdict, layered and validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.checks.registry import registered_checks
from gatekeeper.decision import Finding, Severity, Verdict
from gatekeeper.item import Channel
from gatekeeper.policy import PolicyError, load_policy
from tests.conftest import run_gatekeeper

EMAIL, POST = Channel.EMAIL, Channel.POST


def verdict_for(
    findings: list[tuple[str, str | None]], channel: Channel, site: Path | None = None
) -> tuple[Verdict, Verdict]:
    policy = load_policy(site)
    rated = policy.rate(
        channel, [Finding(check, "summary", variant=variant) for check, variant in findings]
    )
    return policy.verdict(rated)


@pytest.mark.parametrize(
    ("findings", "channel", "expected"),
    [
        ([], EMAIL, Verdict.RELEASE),
        ([("recipient_lookalike", None)], EMAIL, Verdict.HOLD),
        ([("recipient_lookalike", None)], POST, Verdict.HOLD),
        ([("recipient_other_case", None)], EMAIL, Verdict.HOLD),
        ([("display_name_mismatch", None)], EMAIL, Verdict.HOLD),
        ([("content_other_case", None)], EMAIL, Verdict.HOLD),
        ([("attachment_other_case", None)], POST, Verdict.HOLD),
        ([("confidential_address_leak", None)], EMAIL, Verdict.BLOCK),
        ([("confidential_address_leak", None)], POST, Verdict.BLOCK),
        ([("visible_recipients", None)], EMAIL, Verdict.HOLD),
        ([("visible_recipients", None)], POST, Verdict.RELEASE),  # info on paper
        ([("recipient_unknown", None)], EMAIL, Verdict.HOLD),
        ([("recipient_unknown", "not_sensitive")], EMAIL, Verdict.RELEASE),
        ([("recipient_unknown", "not_sensitive")], POST, Verdict.HOLD),
        ([("contact_not_allowed", None)], EMAIL, Verdict.HOLD),
        ([("unreadable_content", None)], EMAIL, Verdict.HOLD),
        (
            [("recipient_unknown", "not_sensitive"), ("recipient_lookalike", None)],
            EMAIL,
            Verdict.HOLD,
        ),
        (
            [("recipient_lookalike", None), ("confidential_address_leak", None)],
            EMAIL,
            Verdict.BLOCK,
        ),
        ([("a_check_nobody_registered", None)], EMAIL, Verdict.HOLD),  # never release unrated
    ],
)
def test_default_policy_table(
    findings: list[tuple[str, str | None]], channel: Channel, expected: Verdict
) -> None:
    verdict, enforced = verdict_for(findings, channel)
    assert verdict is expected
    assert enforced is expected


def test_findings_are_ordered_most_severe_first() -> None:
    policy = load_policy()
    rated = policy.rate(
        EMAIL,
        [
            Finding("recipient_unknown", "u", variant="not_sensitive"),
            Finding("recipient_lookalike", "l"),
            Finding("confidential_address_leak", "c"),
        ],
    )
    assert [(r.finding.check, r.severity) for r in rated] == [
        ("confidential_address_leak", Severity.BLOCK),
        ("recipient_lookalike", Severity.HOLD),
        ("recipient_unknown", Severity.INFO),
    ]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_a_site_policy_overrides_key_by_key(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        "checks:\n  recipient_unknown:\n    variants:\n      not_sensitive: {email: hold}\n"
        "  recipient_lookalike:\n    settings: {min_similarity: 92}\n",
    )
    policy = load_policy(site)
    unknown = policy.checks["recipient_unknown"]
    assert unknown.severity_for(EMAIL, "not_sensitive") is Severity.HOLD
    assert unknown.severity_for(POST, "not_sensitive") is Severity.HOLD  # untouched: default
    assert policy.settings_for("recipient_lookalike") == {
        "min_similarity": 92,
        "internal_domain_similarity": 85,
    }
    assert policy.checks["display_name_mismatch"].severity_for(EMAIL, None) is Severity.HOLD


def test_monitor_only_releases_but_remembers_and_forced_checks_still_block(tmp_path: Path) -> None:
    site = write(tmp_path, "monitor_only: true\n")
    assert verdict_for([("recipient_lookalike", None)], EMAIL, site) == (
        Verdict.RELEASE,
        Verdict.HOLD,
    )
    assert verdict_for([("confidential_address_leak", None)], EMAIL, site) == (
        Verdict.BLOCK,
        Verdict.BLOCK,
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "checks:\n  confidential_address_leak:\n    severity: {email: hold}\n",
            "site.yaml:3: confidential_address_leak: a forced check's severity cannot be lowered",
        ),
        (
            "checks:\n  confidential_address_leak:\n    forced: false\n",
            "site.yaml:3: confidential_address_leak: a forced check cannot be un-forced",
        ),
        (
            "checks:\n  confidential_address_leak:\n    enabled: false\n",
            "site.yaml:3: confidential_address_leak: a forced check cannot be disabled",
        ),
        (
            "checks:\n  recipient_lookalikee:\n    severity: {email: hold}\n",
            "site.yaml:2: unknown check 'recipient_lookalikee'",
        ),
        ("monitor_only: yes please\n", "site.yaml:1: monitor_only must be true or false"),
        ("version: 2\n", "site.yaml:1: unsupported policy version 2"),
        (
            "checks:\n  recipient_lookalike:\n    severity: {email: stop}\n",
            "site.yaml:3: recipient_lookalike: severity must be info, hold or block, not 'stop'",
        ),
        (
            "checks:\n  recipient_lookalike:\n    severity: {fax: hold}\n",
            "site.yaml:3: recipient_lookalike: unknown channel 'fax'",
        ),
        (
            "checks:\n  recipient_lookalike:\n    settings:\n      min_similarity: high\n",
            "site.yaml:4: recipient_lookalike: setting 'min_similarity' must be int, not 'high'",
        ),
        (
            "checks:\n  recipient_lookalike:\n    settings:\n      threshold: 90\n",
            "site.yaml:4: recipient_lookalike: unknown setting 'threshold'",
        ),
        (
            "checks:\n  recipient_lookalike:\n    sevrity: {email: hold}\n",
            "site.yaml:3: recipient_lookalike: unknown key 'sevrity'",
        ),
        ("monitor_only: true\nchecks: [1, 2\n", "site.yaml:3: not valid YAML"),
        ("surprise: 1\n", "site.yaml:1: unknown key 'surprise'"),
    ],
)
def test_policy_mistakes_are_reported_with_their_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, text))
    assert any(p.endswith(problem) or problem in p for p in caught.value.problems), (
        caught.value.problems
    )


def test_policy_check_command(tmp_path: Path) -> None:
    good = write(tmp_path, "checks:\n  visible_recipients:\n    severity: {post: hold}\n")
    ok = run_gatekeeper("policy", "check", str(good))
    checks = len(registered_checks())
    assert ok.returncode == 0 and f"valid; {checks} checks" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("checks:\n  recipient_lookalike:\n    severity: {email: stop}\n  nope: {}\n")
    result = run_gatekeeper("policy", "check", str(bad))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{bad}:3: recipient_lookalike: severity must be info, hold or block, not 'stop'",
        f"{bad}:4: unknown check 'nope' (known checks: {', '.join(sorted(registered_checks()))})",
    ]
