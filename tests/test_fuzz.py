"""A short fuzzing run in CI: generated and mutated mail never crashes the parser or the gate.

The long run (100 000 inputs) is `python bench/fuzz.py`; this one keeps the
harness working and catches regressions on a few hundred inputs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.timeout(900)
def test_three_hundred_fuzzed_messages_all_get_a_decision() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "fuzz.py"), "--inputs", "300", "--seed", "11"],
        capture_output=True, text=True, timeout=900, check=False, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "300 inputs in" in result.stdout
    assert "failures (exceptions or unread content released): 0" in result.stdout, result.stdout
