"""`relay_cpu`: which CPU the relay's own threads share, as an operator sets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.cli.context import EXIT_UNUSABLE
from gatekeeper.config import ConfigError
from gatekeeper.smtp.affinity import chosen_cpu
from tests.conftest import run_gatekeeper

TWO = frozenset({0, 1})


def test_auto_keeps_the_relay_threads_on_the_first_cpu_when_there_are_several() -> None:
    assert chosen_cpu("auto", TWO) == 0
    assert chosen_cpu("auto", frozenset({2, 3, 5})) == 2


def test_auto_on_a_single_cpu_leaves_it_to_everyone() -> None:
    assert chosen_cpu("auto", frozenset({0})) is None


def test_a_cpu_number_names_that_cpu_and_none_leaves_the_threads_free() -> None:
    assert chosen_cpu("1", TWO) == 1
    assert chosen_cpu(" None ", TWO) is None
    assert chosen_cpu("auto", None) is None  # a system that cannot pin


def test_a_cpu_the_relay_may_not_use_or_a_word_it_does_not_know_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"relay_cpu 7 is not one this process may use \(0, 1\)"):
        chosen_cpu("7", TWO)
    with pytest.raises(ConfigError, match="relay_cpu must be auto, none or a CPU number"):
        chosen_cpu("fastest", TWO)


def test_the_relay_refuses_to_start_on_a_cpu_setting_it_cannot_use(tmp_path: Path) -> None:
    ran = run_gatekeeper(
        "relay",
        env={"GATEKEEPER_RELAY_CPU": "fastest", "GATEKEEPER_DATA_DIR": str(tmp_path)},
    )
    assert ran.returncode == EXIT_UNUSABLE, ran.stderr
    assert "relay_cpu must be auto, none or a CPU number, not 'fastest'" in ran.stderr
