"""`pip install` alone gives a working Gatekeeper: every package, the policy and NLP assets."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_every_python_package_is_listed_for_packaging() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "gatekeeper").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set(), (
        "packages missing from pyproject.toml [tool.setuptools] packages"
    )


@pytest.mark.timeout(600)
def test_the_wheel_carries_the_policy_lexicons_and_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    [wheel] = tmp_path.glob("gatekeeper-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "gatekeeper/policies/default.yaml" in names
    assert any(n.startswith("gatekeeper/policies/lexicons/") and n.endswith(".yaml") for n in names)
    assert "gatekeeper/nlp/pipeline.yaml" in names
    assert "gatekeeper/store/migrations/versions/0001_case_record_and_staff.py" in names
    assert "gatekeeper/store/migrations/script.py.mako" in names
    assert "gatekeeper/checks/recipients.py" in names
