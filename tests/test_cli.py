"""The `gatekeeper` command as an administrator uses it: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
from pathlib import Path

import pytest

from tests.conftest import gatekeeper_command, run_gatekeeper
from tests.spec_example import SPEC_EXAMPLE


def write_lines(path: Path, objects: list[object]) -> Path:
    path.write_text("".join(f"{json.dumps(o)}\n" for o in objects) + "{oops\n")
    return path


def test_help_explains_every_command() -> None:
    top = run_gatekeeper("--help")
    assert top.returncode == 0
    for command in ("cases", "users", "db", "demo"):
        assert f"  {command} " in top.stdout
    for sub in (["cases", "import"], ["cases", "show"], ["users", "import"], ["db", "upgrade"]):
        result = run_gatekeeper(*sub, "--help")
        assert result.returncode == 0, sub
        assert "Usage: gatekeeper" in result.stdout and len(result.stdout.splitlines()) > 4


def test_import_lists_rejected_lines_and_exits_non_zero(tmp_path: Path, database_url: str) -> None:
    export = write_lines(tmp_path / "cases.jsonl", [SPEC_EXAMPLE])
    result = run_gatekeeper("cases", "import", str(export), db=database_url)
    assert result.returncode == 1
    assert f"{export}: rejected line 2: not valid JSON" in result.stderr
    assert result.stdout.strip().startswith("cases: 2 lines read, 1 loaded (1 added")
    again = run_gatekeeper("cases", "import", str(export), db=database_url)
    assert "0 added, 0 updated, 1 unchanged" in again.stdout


def test_import_reads_standard_input(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gk.db'}"
    result = run_gatekeeper("cases", "import", "-", db=db, input=json.dumps(SPEC_EXAMPLE) + "\n")
    assert result.returncode == 0, result.stderr
    assert "1 added" in result.stdout


def test_show_marks_confidential_details_and_who_they_are_withheld_from(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gk.db'}"
    run_gatekeeper("cases", "import", "-", db=db, input=json.dumps(SPEC_EXAMPLE))
    shown = run_gatekeeper("cases", "show", "COM0755749", db=db)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith("Case 853206 (open)")
    assert "CONFIDENTIAL contact details: withheld from Mark Smith (853206-P3)" in out
    assert "email: jane.smith@example.net [confidential]" in out
    assert "email: m.smith77@example.com\n" in out
    assert "represents: Jane Smith" in out
    assert "do not contact directly" in out  # the child
    missing = run_gatekeeper("cases", "show", "999", db=db)
    assert missing.returncode == 1 and "no case '999' in the record" in missing.stderr


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    result = run_gatekeeper("cases", "show", "1", db="postgresql://nobody@127.0.0.1:9/none")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "cannot reach database postgresql://nobody@127.0.0.1:9/none" in result.stderr
    assert "Traceback" not in result.stderr
    nonsense = run_gatekeeper("cases", "show", "1", db="not a url")
    assert nonsense.returncode == 3 and "cannot use database URL 'not a url'" in nonsense.stderr


def test_db_upgrade_migrates_once(tmp_path: Path, database_url: str) -> None:
    first = run_gatekeeper("db", "upgrade", db=database_url)
    assert first.returncode == 0 and "migrated from empty" in first.stdout
    second = run_gatekeeper("db", "upgrade", db=database_url)
    assert "already at schema" in second.stdout


def test_demo_loads_a_sample_record_into_the_default_store(isolated_home: Path) -> None:
    result = run_gatekeeper("demo", "--cases", "25", "--staff", "8", "--no-serve")
    assert result.returncode == 0, result.stderr
    assert "cases: 25 lines read, 25 loaded" in result.stdout
    assert "staff: 8 lines read, 8 loaded" in result.stdout
    assert (isolated_home / "data" / "gatekeeper.db").exists()
    shown = run_gatekeeper("cases", "show", "100000")
    assert shown.returncode == 0 and "Case 100000" in shown.stdout
    again = run_gatekeeper("demo", "--cases", "25", "--staff", "8", "--no-serve")
    assert "0 added, 0 updated, 25 unchanged" in again.stdout


def test_a_progress_bar_is_drawn_on_a_terminal_only(tmp_path: Path) -> None:
    from gatekeeper.sample import SampleRecord

    export = tmp_path / "cases.jsonl"
    export.write_text("".join(f"{line}\n" for line in SampleRecord(2).case_lines(400)))
    db = f"sqlite:///{tmp_path / 'gk.db'}"
    primary, secondary = pty.openpty()
    child = subprocess.Popen(
        [*gatekeeper_command(), "--db", db, "cases", "import", str(export)],
        stdout=subprocess.PIPE, stderr=secondary, env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    child.wait(timeout=120)
    drawn = b""
    while select.select([primary], [], [], 0.5)[0]:  # the secondary end stays open: no EIO
        drawn += os.read(primary, 65536)
    os.close(primary)
    os.close(secondary)
    assert b"importing cases" in drawn and b"%|" in drawn
    piped = run_gatekeeper("cases", "import", str(export), db=db)
    assert "importing cases" not in piped.stderr, "no bar when stderr is not a terminal"


@pytest.mark.parametrize("bad", ["missing.jsonl"])
def test_a_missing_import_file_is_a_clear_error(tmp_path: Path, bad: str) -> None:
    result = run_gatekeeper("cases", "import", str(tmp_path / bad), db=f"sqlite:///{tmp_path}/x.db")
    assert result.returncode != 0
    assert "missing.jsonl" in result.stderr and "Traceback" not in result.stderr
