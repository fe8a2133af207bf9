"""The policy: what each check's finding means on each channel, loaded from YAML.

`policies/default.yaml` ships with the package; a site policy file overrides it
key by key. Validation keeps each key's line so every mistake is reported as
`FILE:LINE: what is wrong`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from gatekeeper.assets import policies_dir
from gatekeeper.checks.registry import CheckSpec, registered_checks
from gatekeeper.decision import Finding, RatedFinding, Severity, Verdict
from gatekeeper.item import Channel

TOP_KEYS = frozenset({"version", "monitor_only", "checks", "approval", "retention"})
CHECK_KEYS = frozenset({"severity", "settings", "variants", "forced", "enabled"})
CHANNELS = frozenset(c.value for c in Channel)
SEVERITIES = frozenset(s.value for s in Severity)
# What a canary item can be made to look like: a mistake a checker must catch.
CANARY_KINDS = ("recipient_lookalike", "recipient_other_case")


class PolicyError(ValueError):
    """A policy file that cannot be used; `problems` are `FILE:LINE: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class CheckPolicy:
    name: str
    severity: Mapping[str, Severity]  # channel -> severity
    settings: Mapping[str, Any]
    variants: Mapping[str, Mapping[str, Severity]] = field(default_factory=dict)
    forced: bool = False
    enabled: bool = True

    def severity_for(self, channel: Channel, variant: str | None) -> Severity:
        if variant and variant in self.variants and channel.value in self.variants[variant]:
            return self.variants[variant][channel.value]
        return self.severity.get(channel.value, Severity.HOLD)


@dataclass(frozen=True)
class ApprovalPolicy:
    """The second check's own rules: how long an item may wait, how fast is too fast, canaries."""

    escalate_after_minutes: float = 60.0  # 0: never escalate
    expire_after_hours: float = 72.0  # 0: never expire
    min_review_seconds: float = 10.0
    canary_rate: float = 0.0  # the share of held items that are canaries
    canary_kinds: tuple[str, ...] = CANARY_KINDS


APPROVAL_KEYS = frozenset(f.name for f in fields(ApprovalPolicy))


@dataclass(frozen=True)
class RetentionPolicy:
    """How long an item's content is kept after its decision (the register keeps metadata)."""

    content_days: float = 30.0  # 0: kept indefinitely


RETENTION_KEYS = frozenset(f.name for f in fields(RetentionPolicy))


@dataclass(frozen=True)
class Policy:
    checks: Mapping[str, CheckPolicy]
    monitor_only: bool = False
    sources: tuple[str, ...] = ()
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    def rate(self, channel: Channel, findings: Iterable[Finding]) -> list[RatedFinding]:
        """Each finding with its severity on `channel`, most severe first (stable otherwise)."""
        order = {name: i for i, name in enumerate(self.checks)}
        rated = []
        for finding in findings:
            rule = self.checks.get(finding.check)
            if rule is None:  # an unregistered check cannot be rated: hold, never release
                rated.append(RatedFinding(finding, Severity.HOLD))
                continue
            severity = rule.severity_for(channel, finding.variant)
            rated.append(RatedFinding(finding, severity, forced=rule.forced))
        return sorted(rated, key=lambda r: (-r.severity.rank, order.get(r.finding.check, 999)))

    def verdict(self, rated: list[RatedFinding]) -> tuple[Verdict, Verdict]:
        """(verdict acted on, verdict the findings call for); they differ in monitor-only mode."""
        worst = max((r.severity for r in rated), key=lambda s: s.rank, default=None)
        enforced = Verdict.of(worst)
        if not self.monitor_only:
            return enforced, enforced
        forced = max((r.severity for r in rated if r.forced), key=lambda s: s.rank, default=None)
        return Verdict.of(forced), enforced

    def settings_for(self, check: str) -> Mapping[str, Any]:
        rule = self.checks.get(check)
        return rule.settings if rule else {}

    def enabled_checks(self) -> list[str]:
        return [name for name, rule in self.checks.items() if rule.enabled]


# -- loading --------------------------------------------------------------------------------


class _Located:
    """A YAML mapping with the line of each key (1-based)."""

    def __init__(self, node: yaml.MappingNode, source: str) -> None:
        self.source = source
        self.line = node.start_mark.line + 1
        self.items: dict[str, tuple[int, Any]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            self.items[str(key)] = (key_node.start_mark.line + 1, _convert(value_node, source))


def _convert(node: yaml.Node, source: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        return _Located(node, source)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(n, source) for n in node.value]
    return yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.ScalarNode) else None


def _parse(text: str, source: str) -> _Located:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([f"{source}{line}: not valid YAML: {problem}"]) from None
    if root is None:
        return _Located(yaml.MappingNode("tag:yaml.org,2002:map", []), source)
    if not isinstance(root, yaml.MappingNode):
        raise PolicyError([f"{source}:{root.start_mark.line + 1}: a policy is a mapping of keys"])
    return _Located(root, source)


@dataclass
class _Draft:
    """A check's policy as the layers build it up."""

    severity: dict[str, Severity] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Severity]] = field(default_factory=dict)
    forced: bool = False
    enabled: bool = True


class _Builder:
    def __init__(self, specs: Mapping[str, CheckSpec]) -> None:
        self.specs = specs
        self.drafts = {name: _Draft(settings=dict(spec.settings)) for name, spec in specs.items()}
        self.monitor_only = False
        self.problems: list[str] = []
        self.is_default = True
        self.order: list[str] = []  # checks in the order the policy files name them
        self.approval: dict[str, Any] = {}
        self.retention: dict[str, float] = {}

    def fail(self, source: str, line: int, message: str) -> None:
        self.problems.append(f"{source}:{line}: {message}")

    def apply(self, doc: _Located) -> None:
        src = doc.source
        for key, (line, value) in doc.items.items():
            if key not in TOP_KEYS:
                expected = ", ".join(sorted(TOP_KEYS))
                self.fail(src, line, f"unknown key {key!r} (expected {expected})")
            elif key == "version" and value != 1:
                self.fail(src, line, f"unsupported policy version {value!r} (this program reads 1)")
            elif key == "monitor_only":
                if isinstance(value, bool):
                    self.monitor_only = value
                else:
                    self.fail(src, line, "monitor_only must be true or false")
            elif key == "checks":
                if not isinstance(value, _Located):
                    self.fail(src, line, "checks must be a mapping of check names")
                    continue
                for name, (check_line, body) in value.items.items():
                    self._apply_check(src, name, check_line, body)
            elif key == "approval":
                self._approval(src, line, value)
            elif key == "retention":
                self._retention(src, line, value)

    def _retention(self, src: str, line: int, value: Any) -> None:
        if not isinstance(value, _Located):
            self.fail(src, line, "retention must be a mapping (content_days)")
            return
        for key, (key_line, setting) in value.items.items():
            if key not in RETENTION_KEYS:
                expected = ", ".join(sorted(RETENTION_KEYS))
                self.fail(src, key_line, f"retention: unknown key {key!r} (expected {expected})")
            elif isinstance(setting, bool) or not isinstance(setting, int | float) or setting < 0:
                self.fail(src, key_line, f"retention: {key} must be days >= 0, not {setting!r}")
            else:
                self.retention[key] = float(setting)

    def _approval(self, src: str, line: int, value: Any) -> None:
        if not isinstance(value, _Located):
            self.fail(src, line, "approval must be a mapping (escalate_after_minutes, ...)")
            return
        for key, (key_line, setting) in value.items.items():
            if key not in APPROVAL_KEYS:
                expected = ", ".join(sorted(APPROVAL_KEYS))
                self.fail(src, key_line, f"approval: unknown key {key!r} (expected {expected})")
            elif key == "canary_kinds":
                kinds = setting if isinstance(setting, list) else [setting]
                wrong = [k for k in kinds if k not in CANARY_KINDS]
                if wrong or not kinds:
                    known = ", ".join(CANARY_KINDS)
                    self.fail(src, key_line, f"approval: canary_kinds are a list of: {known}")
                else:
                    self.approval[key] = tuple(dict.fromkeys(kinds))
            elif isinstance(setting, bool) or not isinstance(setting, int | float) or setting < 0:
                self.fail(src, key_line, f"approval: {key} must be a number >= 0, not {setting!r}")
            elif key == "canary_rate" and setting > 0.5:
                self.fail(src, key_line, "approval: canary_rate is a share of held items, 0 to 0.5")
            else:
                self.approval[key] = float(setting)

    def _apply_check(self, src: str, name: str, line: int, body: Any) -> None:
        draft = self.drafts.get(name)
        if draft is not None and name not in self.order:
            self.order.append(name)
        if draft is None:
            known = ", ".join(sorted(self.specs))
            self.fail(src, line, f"unknown check {name!r} (known checks: {known})")
            return
        if not isinstance(body, _Located):
            self.fail(src, line, f"check {name!r} must be a mapping (severity, settings, ...)")
            return
        for key, (key_line, value) in body.items.items():
            if key not in CHECK_KEYS:
                expected = ", ".join(sorted(CHECK_KEYS))
                self.fail(src, key_line, f"{name}: unknown key {key!r} (expected {expected})")
            elif key == "severity":
                self._severities(src, name, key_line, value, draft=draft, target=draft.severity)
            elif key == "variants":
                if not isinstance(value, _Located):
                    self.fail(src, key_line, f"{name}: variants must be a mapping")
                    continue
                for variant, (v_line, v_value) in value.items.items():
                    target = draft.variants.setdefault(variant, {})
                    self._severities(src, name, v_line, v_value, draft=draft, target=target)
            elif key == "settings":
                self._settings(src, name, key_line, value, draft)
            elif key in ("forced", "enabled"):
                if not isinstance(value, bool):
                    self.fail(src, key_line, f"{name}: {key} must be true or false")
                elif key == "forced":
                    if draft.forced and not value and not self.is_default:
                        self.fail(src, key_line, f"{name}: a forced check cannot be un-forced")
                    else:
                        draft.forced = value
                elif draft.forced and not value and not self.is_default:
                    self.fail(src, key_line, f"{name}: a forced check cannot be disabled")
                else:
                    draft.enabled = value

    def _severities(
        self,
        src: str,
        name: str,
        line: int,
        value: Any,
        *,
        draft: _Draft,
        target: dict[str, Severity],
    ) -> None:
        if not isinstance(value, _Located):
            self.fail(src, line, f"{name}: severities are a mapping of channel to info/hold/block")
            return
        for channel, (c_line, level) in value.items.items():
            if channel not in CHANNELS:
                self.fail(src, c_line, f"{name}: unknown channel {channel!r} (email or post)")
            elif level not in SEVERITIES:
                self.fail(
                    src, c_line, f"{name}: severity must be info, hold or block, not {level!r}"
                )
            else:
                new = Severity(level)
                old = target.get(channel)
                if draft.forced and not self.is_default and old and new.rank < old.rank:
                    self.fail(src, c_line, f"{name}: a forced check's severity cannot be lowered")
                else:
                    target[channel] = new

    def _settings(self, src: str, name: str, line: int, value: Any, draft: _Draft) -> None:
        if not isinstance(value, _Located):
            self.fail(src, line, f"{name}: settings must be a mapping")
            return
        defaults = self.specs[name].settings
        for key, (s_line, setting) in value.items.items():
            if key not in defaults:
                known = ", ".join(sorted(defaults)) or "none"
                self.fail(src, s_line, f"{name}: unknown setting {key!r} (known: {known})")
                continue
            expected = type(defaults[key])
            numeric = expected in (int, float) and isinstance(setting, int | float)
            if (not isinstance(setting, expected) and not numeric) or isinstance(setting, bool) != (
                expected is bool
            ):
                wanted = expected.__name__
                self.fail(src, s_line, f"{name}: setting {key!r} must be {wanted}, not {setting!r}")
                continue
            draft.settings[key] = setting

    def build(self, sources: tuple[str, ...]) -> Policy:
        checks = {}
        names = self.order + [n for n in self.drafts if n not in self.order]
        for name in names:
            draft = self.drafts[name]
            missing = CHANNELS - set(draft.severity)
            if missing:  # a check the policy never mentions still holds: never release unrated
                draft.severity.update({channel: Severity.HOLD for channel in missing})
            checks[name] = CheckPolicy(
                name=name,
                severity=dict(draft.severity),
                settings=dict(draft.settings),
                variants={k: dict(v) for k, v in draft.variants.items()},
                forced=draft.forced,
                enabled=draft.enabled,
            )
        return Policy(
            checks=checks,
            monitor_only=self.monitor_only,
            sources=sources,
            approval=ApprovalPolicy(**self.approval),
            retention=RetentionPolicy(**self.retention),
        )


def default_policy_path() -> Path:
    return policies_dir() / "default.yaml"


def load_policy(site_file: str | Path | None = None, *, monitor_only: bool | None = None) -> Policy:
    """The default policy, overridden key by key by `site_file`; raises `PolicyError`."""
    builder = _Builder(registered_checks())
    default = default_policy_path()
    builder.apply(_parse(default.read_text(encoding="utf-8"), str(default)))
    sources = [str(default)]
    if site_file:
        path = Path(site_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError([f"{path}: cannot read the policy file: {exc.strerror}"]) from None
        builder.is_default = False
        builder.apply(_parse(text, str(path)))
        sources.append(str(path))
    if builder.problems:
        raise PolicyError(builder.problems)
    policy = builder.build(tuple(sources))
    if monitor_only is not None:
        policy = replace(policy, monitor_only=monitor_only)
    return policy
