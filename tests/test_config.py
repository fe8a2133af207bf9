"""Configuration: one file plus environment variables, every setting documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.config import ConfigError, Settings, load_settings, setting_docs
from tests.conftest import REPO


def test_environment_overrides_the_file_which_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "gatekeeper.toml"
    config.write_text(
        'database_url = "sqlite:///from-file.db"\ninternal_domains = ["Gatekeeper.Example"]\n'
        'log_level = "DEBUG"\n'
    )
    settings = load_settings(config, environ={"GATEKEEPER_LOG_LEVEL": "WARNING"})
    assert settings.database_url == "sqlite:///from-file.db"
    assert settings.internal_domains == ("gatekeeper.example",)
    assert settings.log_level == "WARNING"


def test_a_comma_separated_environment_list(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path / "absent.toml" if False else None,
        environ={"GATEKEEPER_INTERNAL_DOMAINS": "a.example, B.example,"},
    )
    assert settings.internal_domains == ("a.example", "b.example")


def test_an_unknown_setting_in_the_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "gatekeeper.toml"
    config.write_text('databse_url = "typo"\n')
    with pytest.raises(ConfigError, match="unknown setting 'databse_url'"):
        load_settings(config, environ={})


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_the_default_store_is_sqlite_in_the_data_directory(isolated_home: Path) -> None:
    assert (
        Settings().effective_database_url == f"sqlite:///{isolated_home / 'data' / 'gatekeeper.db'}"
    )


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [
        name
        for name in setting_docs()
        if f"`{name}`" not in readme or f"`GATEKEEPER_{name.upper()}`" not in readme
    ]
    assert missing == [], f"settings missing from README.md: {missing}"
