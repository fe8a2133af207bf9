"""A print room of one's own: a private CUPS server, and a printer that files what it prints.

- `PrivateCups`: `cupsd -f` with a configuration of its own (ServerRoot, spool,
  logs and state in one folder; one loopback port; no authentication), so the
  system's CUPS is never touched. Its ServerBin links the system's filters and
  backends (`/usr/lib/cups`) and holds Gatekeeper's backend.
- `FilingPrinter`: what a `socket://` device URI talks to (AppSocket,
  JetDirect): a loopback listener that files every job it receives.

The demo prints through them; the tests do too.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import gatekeeper

SYSTEM_CUPS = Path("/usr/lib/cups")
INSTALL_HINT = "apt-get install cups cups-client cups-filters poppler-utils"
HOST = "127.0.0.1"

CUPSD_CONF = """\
Listen {host}:{port}
LogLevel {log_level}
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


class CupsError(RuntimeError):
    """The private CUPS server could not start or be set up."""


def cups_program(name: str) -> str | None:
    """Where a CUPS program is; `/usr/sbin` counts even when it is not on PATH."""
    found = shutil.which(name)
    if found is None and os.access(f"/usr/sbin/{name}", os.X_OK):
        found = f"/usr/sbin/{name}"
    return found


def cups_installed() -> bool:
    """Whether this machine can run a private CUPS server with a `socket://` printer."""
    programs = ("cupsd", "lpadmin", "lpstat", "lp")
    return all(cups_program(p) for p in programs) and (SYSTEM_CUPS / "backend/socket").exists()


def readable_by_others(*paths: Path) -> bool:
    """Whether a user other than the owner (CUPS's `lp`) can reach and read every path."""
    for path in paths:
        for folder in [*path.parents, path] if path.is_dir() else path.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        if not path.stat().st_mode & stat.S_IROTH:
            return False
    return True


def backend_needs_root(*also: Path) -> bool:
    """Whether CUPS's user `lp` could not start this installation's backend, so it must run
    as root (`--run-as-root`): it cannot read this Python, Gatekeeper, or `also`."""
    python = Path(sys.executable)
    package = Path(gatekeeper.__file__).parent
    return not readable_by_others(python, python.resolve(), Path(sys.prefix), package, *also)


class PrivateCups:
    """`cupsd -f` on `127.0.0.1:port`, everything it keeps under `root`.

    `prepare()` lays out the folders and configuration and returns the backend
    folder, where Gatekeeper's backend goes before `start()`. Running it again
    on the same folder keeps its queues and held jobs.
    """

    def __init__(self, root: Path, port: int, *, log_level: str = "info") -> None:
        self.root = root
        self.port = port
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        """`host:port`, as `lp -h` takes it."""
        return f"{HOST}:{self.port}"

    @property
    def backend_dir(self) -> Path:
        return self.root / "bin/backend"

    @property
    def error_log(self) -> Path:
        return self.root / "log/error_log"

    def prepare(self) -> Path:
        """Write the folders and configuration; the backend folder."""
        folders = ("conf/ppd", "conf/ssl", "bin/backend", "spool/tmp", "cache", "state", "log")
        for name in folders:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        # cupsd refuses programs in a folder others may write to; `lp` must get in.
        for folder in (self.root, self.root / "bin", self.backend_dir):
            os.chmod(folder, 0o755)
        for name in ("filter", "daemon", "cgi-bin", "monitor", "notifier", "driver"):
            _link(self.root / "bin" / name, SYSTEM_CUPS / name)
        for backend in ("socket", "ipp"):
            _link(self.backend_dir / backend, SYSTEM_CUPS / "backend" / backend)
        (self.root / "conf/cupsd.conf").write_text(
            CUPSD_CONF.format(host=HOST, port=self.port, log_level=self.log_level)
        )
        (self.root / "conf/cups-files.conf").write_text(CUPS_FILES_CONF.format(root=self.root))
        return self.backend_dir

    def start(self, seconds: float = 30.0) -> None:
        """Start cupsd and wait until its scheduler answers; CupsError when it does not."""
        cupsd = cups_program("cupsd")
        if cupsd is None:
            raise CupsError(f"cupsd is not installed ({INSTALL_HINT})")
        # Another server there (say a cupsd left by a killed run) would answer in ours' stead.
        try:
            with socket.create_server((HOST, self.port)):
                pass
        except OSError as exc:
            raise CupsError(f"port {self.port} is taken: {exc.strerror}") from None
        conf = self.root / "conf"
        self.process = subprocess.Popen(
            [cupsd, "-f", "-c", str(conf / "cupsd.conf"), "-s", str(conf / "cups-files.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is for the caller, which stops it
        )
        deadline = time.monotonic() + seconds
        while not self.running():
            if self.process.poll() is not None:
                status = self.process.returncode
                raise CupsError(f"cupsd exited with status {status}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise CupsError(f"cupsd did not answer within {seconds:.0f} s")
            time.sleep(0.1)

    def running(self) -> bool:
        return "scheduler is running" in self.run("lpstat", "-r").stdout

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """A CUPS client command against this server."""
        return subprocess.run(
            [cups_program(program) or program, "-h", self.server, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def add_queue(self, name: str, device_uri: str) -> None:
        """Create (or re-point) an enabled queue that accepts jobs."""
        done = self.run("lpadmin", "-p", name, "-E", "-v", device_uri)
        if done.returncode != 0:
            raise CupsError(f"lpadmin -p {name}: {done.stderr.strip()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "no log"

    def stop(self) -> None:
        """Stop cupsd (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _link(link: Path, target: Path) -> None:
    if target.exists() and not link.is_symlink():
        link.symlink_to(target)


class _JobHandler(socketserver.StreamRequestHandler):
    server: _Listener

    def handle(self) -> None:
        data = self.rfile.read()  # AppSocket: one connection, one job, until the sender closes
        if data:
            self.server.printer.file(data)


class _Listener(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], printer: FilingPrinter) -> None:
        self.printer = printer
        super().__init__(address, _JobHandler)


class FilingPrinter:
    """An AppSocket printer on loopback that files each job as `<time>-<n>.pdf` in `folder`.

    A job that is not a PDF is filed as `.prn`. Files appear whole (written
    aside, then renamed), so whoever watches the folder never reads half a job.
    """

    def __init__(self, folder: Path, port: int = 0) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(len(self.filed()) + 1)
        self._lock = threading.Lock()
        self._listener = _Listener((HOST, port), self)
        self.port: int = self._listener.server_address[1]
        self._thread = threading.Thread(
            target=self._listener.serve_forever, name="filing-printer", daemon=True
        )
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"socket://{HOST}:{self.port}"

    def file(self, job: bytes) -> Path:
        with self._lock:
            number = next(self._numbers)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        suffix = ".pdf" if job.startswith(b"%PDF-") else ".prn"
        path = self.folder / f"{stamp}-{number:04d}{suffix}"
        aside = path.with_name(f".{path.name}.part")
        aside.write_bytes(job)
        os.replace(aside, path)
        return path

    def filed(self) -> list[Path]:
        """The jobs filed so far, oldest first."""
        return sorted(
            p for p in self.folder.iterdir() if p.suffix in (".pdf", ".prn") and p.is_file()
        )

    def close(self) -> None:
        self._listener.shutdown()
        self._listener.server_close()
        self._thread.join()
