"""Real print peers for the letters tests: a private `cupsd`, an AppSocket printer, the service.

- `CupsServer`: `cupsd -f` with a configuration of its own (ServerRoot, spool,
  logs, state in a temporary folder; a free loopback port; no authentication),
  whose ServerBin links the system's filters and backends and holds Gatekeeper's
  backend, installed by the real `gatekeeper post install-backend`.
- `SocketPrinter`: what `socket://` talks to (AppSocket / JetDirect): a TCP
  listener that keeps every job it receives.
- `LettersService`: `gatekeeper post serve` as a process, on a free port.

The folders are world-readable because CUPS runs backends as its own user `lp`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO, gatekeeper_command

SYSTEM_CUPS = Path("/usr/lib/cups")


def readable_by_others(*paths: Path) -> bool:
    """Whether a user other than the owner (CUPS's `lp`) can reach and read every path."""
    for path in paths:
        for folder in [*path.parents, path] if path.is_dir() else path.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        if not path.stat().st_mode & stat.S_IROTH:
            return False
    return True


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


class SocketPrinter:
    """An AppSocket printer on loopback: every connection is one job, kept as bytes."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.jobs: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                chunks = []
                while data := connection.recv(65536):
                    chunks.append(data)
            if chunks:
                with self._lock:
                    self.jobs.append(b"".join(chunks))

    def received(self) -> list[bytes]:
        with self._lock:
            return list(self.jobs)

    def close(self) -> None:
        self.server.close()


CUPSD_CONF = """\
Listen 127.0.0.1:{port}
LogLevel debug
WebInterface No
Browsing No
DefaultAuthType None
JobRetryInterval 2
MaxJobTime 120
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
    Allow all
  </Limit>
</Policy>
"""

CUPS_FILES_CONF = """\
ServerRoot {root}/conf
ServerBin {root}/bin
DataDir /usr/share/cups
RequestRoot {root}/spool
TempDir {root}/spool/tmp
CacheDir {root}/cache
StateDir {root}/state
ErrorLog {root}/log/error_log
AccessLog {root}/log/access_log
PageLog {root}/log/page_log
FileDevice No
"""


class CupsServer:
    """A private cupsd on a free loopback port, with Gatekeeper's backend installed."""

    def __init__(self, gatekeeper_env: dict[str, str]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gk-cups-"))
        os.chmod(self.root, 0o755)
        self.port = free_port()
        for folder in ("conf/ppd", "conf/ssl", "bin/backend", "spool/tmp", "cache", "state", "log"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        for folder in ("bin", "bin/backend"):
            os.chmod(self.root / folder, 0o755)
        for name in ("filter", "daemon", "cgi-bin", "monitor", "notifier", "driver"):
            if (SYSTEM_CUPS / name).exists():
                (self.root / "bin" / name).symlink_to(SYSTEM_CUPS / name)
        for backend in ("socket", "ipp"):
            (self.root / "bin/backend" / backend).symlink_to(SYSTEM_CUPS / "backend" / backend)
        install = [
            *gatekeeper_command(),
            "post",
            "install-backend",
            "--dir",
            str(self.root / "bin/backend"),
        ]
        python = Path(sys.executable)
        if not readable_by_others(python, python.resolve(), Path(sys.prefix), REPO / "gatekeeper"):
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
        (self.root / "conf/cupsd.conf").write_text(CUPSD_CONF.format(port=self.port))
        (self.root / "conf/cups-files.conf").write_text(CUPS_FILES_CONF.format(root=self.root))
        self.process = subprocess.Popen(
            [
                shutil.which("cupsd") or "/usr/sbin/cupsd",
                "-f",
                "-c",
                str(self.root / "conf/cupsd.conf"),
                "-s",
                str(self.root / "conf/cups-files.conf"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._running, 30, "cupsd to start")

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _running(self) -> bool:
        assert self.process.poll() is None, "cupsd exited"
        return "scheduler is running" in self.run("lpstat", "-r").stdout

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """A CUPS client command against this server."""
        return subprocess.run(
            [program, "-h", self.server, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def add_queue(self, name: str, device_uri: str) -> None:
        done = self.run("lpadmin", "-p", name, "-E", "-v", device_uri)
        assert done.returncode == 0, done.stderr

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
            raise AssertionError(f"job {job_id}: {found}\n{self.log_tail()}") from None
        return found

    def printer_state(self, queue: str) -> str:
        return self.run("lpstat", "-p", queue).stdout

    def log_tail(self, lines: int = 60) -> str:
        log = (self.root / "log/error_log").read_text(errors="replace").splitlines()
        return "\n".join(line for line in log if "[Job" in line)[-8000:] or "\n".join(log[-lines:])

    def close(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
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
