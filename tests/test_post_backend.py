"""The CUPS backend as CUPS runs it: a process with CUPS's arguments and environment.

It must never print unchecked and never crash (a crashed backend stops the
whole queue): whatever goes wrong, the job is held (exit 3) with a reason.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gatekeeper.post.backend import CUPS_BACKEND_HOLD, discovery_line
from tests.conftest import run_gatekeeper
from tests.cups_peers import SYSTEM_CUPS, free_port
from tests.letters import MARK, letter_pdf


@pytest.fixture
def backend(tmp_path: Path) -> Path:
    """The backend installed by the real command, pointed at a port nobody listens on."""
    folder = tmp_path / "backend"
    folder.mkdir()
    env = {"GATEKEEPER_LETTERS_PORT": str(free_port()), "GATEKEEPER_LETTERS_TIMEOUT": "5"}
    done = run_gatekeeper("post", "install-backend", "--dir", str(folder), env=env)
    assert done.returncode == 0, done.stderr
    assert "installed" in done.stdout
    return folder / "gatekeeper"


def run_backend(
    backend: Path, args: list[str], device_uri: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    serverbin = tmp_path / "serverbin"
    (serverbin / "backend").mkdir(parents=True, exist_ok=True)
    socket_backend = serverbin / "backend" / "socket"
    if not socket_backend.exists():
        socket_backend.symlink_to(SYSTEM_CUPS / "backend" / "socket")
    env = {
        "DEVICE_URI": device_uri,
        "CUPS_SERVERBIN": str(serverbin),
        "CUPS_SERVER": "localhost",
        "IPP_PORT": "631",
        "PRINTER": "letters",
        "TMPDIR": str(tmp_path),
        "PATH": os.environ.get("PATH", ""),
    }
    return subprocess.run(
        [str(backend), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_installed_backend_is_a_small_script_cups_runs_as_its_own_user(backend: Path) -> None:
    text = backend.read_text()
    assert text.startswith(f"#!{sys.executable} -I\n")
    assert "from gatekeeper.post.backend import main" in text
    assert stat.S_IMODE(backend.stat().st_mode) == 0o755


def test_without_arguments_it_tells_cups_what_it_is(backend: Path, tmp_path: Path) -> None:
    done = run_backend(backend, [], "", tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == discovery_line()


def test_when_the_letters_service_is_down_the_job_is_held_never_printed(
    backend: Path, tmp_path: Path
) -> None:
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(letter_pdf(MARK))
    args = ["12", "a.jones", "letter", "1", "", str(letter)]
    done = run_backend(backend, args, "gatekeeper:socket://127.0.0.1:9", tmp_path)
    assert done.returncode == CUPS_BACKEND_HOLD
    assert "ERROR: Gatekeeper: held, the letters service could not check the letter" in done.stderr


@pytest.mark.parametrize(
    "uri",
    ["socket://127.0.0.1:9100", "gatekeeper:", "gatekeeper:gatekeeper:x", "gatekeeper:../x:1"],
)
def test_a_device_uri_that_wraps_no_printer_holds_the_job(
    backend: Path, tmp_path: Path, uri: str
) -> None:
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(letter_pdf(MARK))
    done = run_backend(backend, ["12", "a.jones", "t", "1", "", str(letter)], uri, tmp_path)
    assert done.returncode == CUPS_BACKEND_HOLD
    assert "ERROR: Gatekeeper: held: " in done.stderr


def test_anything_unexpected_holds_the_job_instead_of_stopping_the_queue(
    backend: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "vanished.pdf"
    done = run_backend(
        backend, ["12", "a.jones", "t", "1", "", str(missing)], "gatekeeper:socket://x:9", tmp_path
    )
    assert done.returncode == CUPS_BACKEND_HOLD
    assert (
        "ERROR: Gatekeeper: held, the letter could not be checked (FileNotFoundError" in done.stderr
    )
