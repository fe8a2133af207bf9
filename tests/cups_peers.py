"""Real print peers for the letters tests: a private `cupsd`, an AppSocket printer, the service.

- `CupsServer`: `gatekeeper.post.private_cups.PrivateCups` (the demo's print
  room) in a temporary folder on a free loopback port, whose ServerBin holds
  Gatekeeper's backend, installed by the real `gatekeeper post install-backend`.
- `SocketPrinter`: the package's `FilingPrinter` (what `socket://` talks to)
  in a temporary folder, every job it receives kept.
- `LettersService`: `gatekeeper post serve` as a process, on a free port.

The folders are world-readable because CUPS runs backends as its own user `lp`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gatekeeper.post.private_cups import (
    SYSTEM_CUPS,
    FilingPrinter,
    PrivateCups,
    backend_needs_root,
)
from tests.conftest import gatekeeper_command

__all__ = ["SYSTEM_CUPS", "CupsServer", "LettersServiceProcess", "SocketPrinter", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], seconds: float = 60.0, what: str = "it") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class SocketPrinter(FilingPrinter):
    """An AppSocket printer on loopback: every connection is one job, kept."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="gk-printer-")
        super().__init__(Path(self._folder.name))

    def received(self) -> list[bytes]:
        return [path.read_bytes() for path in self.filed()]

    def close(self) -> None:
        super().close()
        self._folder.cleanup()


class CupsServer(PrivateCups):
    """A private cupsd on a free loopback port, with Gatekeeper's backend installed."""

    def __init__(self, gatekeeper_env: dict[str, str]) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="gk-cups-")), free_port(), log_level="debug")
        install = [*gatekeeper_command(), "post", "install-backend", "--dir", str(self.prepare())]
        if backend_needs_root(self.root):
            install.append("--run-as-root")  # CUPS's user `lp` could not start it otherwise
        installed = subprocess.run(
            install,
            env={**os.environ, **gatekeeper_env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert installed.returncode == 0, installed.stderr
        self.start()

    def print_file(self, queue: str, path: Path, title: str = "letter") -> int:
        """`lp` a file as a member of staff would; returns the job id."""
        done = self.run("lp", "-d", queue, "-t", title, "-U", "a.jones", str(path))
        assert done.returncode == 0, done.stderr
        match = re.search(r"request id is \S+-(\d+)", done.stdout)
        assert match, done.stdout
        return int(match.group(1))

    def job(self, job_id: int) -> dict[str, str]:
        """The job's attributes as ipptool prints them (job-state, job-printer-state-message)."""
        test = "/usr/share/cups/ipptool/get-job-attributes.test"
        done = subprocess.run(
            ["ipptool", "-tv", f"ipp://{self.server}/jobs/{job_id}", test],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        attributes = {}
        for line in done.stdout.splitlines():
            found = re.match(r"\s+([a-z-]+) \([^)]*\) = (.*)$", line)
            if found:
                attributes[found.group(1)] = found.group(2)
        return attributes

    def wait_job(self, job_id: int, states: set[str], seconds: float = 90.0) -> dict[str, str]:
        found: dict[str, str] = {}

        def reached() -> bool:
            found.update(self.job(job_id))
            return found.get("job-state") in states

        try:
            wait_for(reached, seconds, f"job {job_id} to be {states}")
        except AssertionError:
            raise AssertionError(f"job {job_id}: {found}\n{self.job_log()}") from None
        return found

    def printer_state(self, queue: str) -> str:
        return self.run("lpstat", "-p", queue).stdout

    def job_log(self, lines: int = 60) -> str:
        log = self.error_log.read_text(errors="replace").splitlines()
        return "\n".join(line for line in log if "[Job" in line)[-8000:] or "\n".join(log[-lines:])

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class LettersServiceProcess:
    """`gatekeeper post serve` on a free loopback port, until `close`."""

    def __init__(self, db: str, env: dict[str, str], log: Path) -> None:
        self.port = int(env.get("GATEKEEPER_LETTERS_PORT", free_port()))
        self.env = {**os.environ, **env, "GATEKEEPER_LETTERS_PORT": str(self.port)}
        self.env.pop("GATEKEEPER_CONFIG", None)
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [*gatekeeper_command(), "--db", db, "post", "serve"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._healthy, 180, "the letters service")

    def _healthy(self) -> bool:
        assert self.process.poll() is None, self.log_path.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return str(r.read().decode())

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
