"""Tests keep the docs honest: every check, policy key and setting is documented."""

from __future__ import annotations

import yaml

from gatekeeper.checks.registry import registered_checks
from gatekeeper.policy import CHECK_KEYS, TOP_KEYS, default_policy_path
from tests.conftest import REPO


def test_every_check_is_in_the_readme_with_its_description() -> None:
    readme = (REPO / "README.md").read_text()
    for name, spec in registered_checks().items():
        assert f"`{name}`" in readme, f"check {name} is not documented in README.md"
        assert spec.description.rstrip(".") in readme, f"README's description of {name} differs"


def test_every_check_is_named_in_the_default_policy() -> None:
    default = yaml.safe_load(default_policy_path().read_text())
    assert set(default["checks"]) == set(registered_checks())


def test_every_policy_key_and_check_setting_is_documented() -> None:
    guide = (REPO / "policies" / "README.md").read_text()
    for key in sorted(TOP_KEYS | CHECK_KEYS):
        assert f"`{key}`" in guide, f"policy key {key} is not documented in policies/README.md"
    for name, spec in registered_checks().items():
        for setting in spec.settings:
            assert f"`{setting}`" in guide, f"setting {name}.{setting} is not in policies/README.md"
