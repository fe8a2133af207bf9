"""Gatekeeper's CUPS backend: every letter through the gate before it reaches the printer.

CUPS runs a backend once per job: `gatekeeper JOB USER TITLE COPIES OPTIONS [FILE]`,
with `DEVICE_URI=gatekeeper:socket://printer:9100` (the real printer's URI
after `gatekeeper:`). This backend hands the PDF to the letters service and
acts on its answer:

- print: the stamped PDF goes to the real printer's own backend
  (`$CUPS_SERVERBIN/backend/<scheme>`, run with `DEVICE_URI` set to the inner
  URI), whose exit status is ours;
- hold: exit 3 (CUPS_BACKEND_HOLD): CUPS holds the job until a checker approves
  it and Gatekeeper releases it, when CUPS runs this backend again;
- cancel: exit 5 (CUPS_BACKEND_CANCEL): the job is cancelled; it must not print.

It never prints unchecked and never crashes: when the service cannot be
reached, or anything at all goes wrong, the job is held (a crashed backend
would stop the whole queue). The `ERROR:` line on stderr becomes the job's
state message, which CUPS keeps after the job ends.

Standard library only, so that it starts in milliseconds.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from gatekeeper.post.printjob import JOB_HEADER, Action, PrintJob

# Exit codes from CUPS's <cups/backend.h>.
CUPS_BACKEND_OK = 0
CUPS_BACKEND_FAILED = 1
CUPS_BACKEND_HOLD = 3
CUPS_BACKEND_STOP = 4  # stops the whole queue: never used here
CUPS_BACKEND_CANCEL = 5

SCHEME = "gatekeeper"
DEFAULT_SERVICE = "http://127.0.0.1:9127"
DEFAULT_TIMEOUT = 60.0
MAX_JOB_BYTES = 200 * 1024 * 1024
_INNER_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (`letters_socket`)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def _connection(service: str, timeout: float) -> http.client.HTTPConnection:
    if service.startswith("unix:"):
        return _UnixConnection(service.removeprefix("unix:"), timeout)
    hostport = service.removeprefix("http://").rstrip("/")
    return http.client.HTTPConnection(hostport, timeout=timeout)


def _call(
    service: str, timeout: float, path: str, body: bytes, headers: Mapping[str, str]
) -> dict[str, Any]:
    connection = _connection(service, timeout)
    try:
        connection.request("POST", path, body=body, headers=dict(headers))
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    answer = json.loads(payload or b"{}")
    if response.status != 200 or not isinstance(answer, dict):
        detail = answer.get("error") if isinstance(answer, dict) else None
        raise RuntimeError(f"the letters service answered {response.status}: {detail}")
    return answer


def _say(stderr: IO[str], level: str, message: str) -> None:
    """A message line CUPS reads from the backend's stderr (one line, no control characters)."""
    clean = " ".join(message.split())
    stderr.write(f"{level}: {clean}\n")
    stderr.flush()


def discovery_line() -> str:
    """What CUPS lists for this backend (`lpinfo -v`) when called without arguments."""
    return f'network {SCHEME} "Unknown" "Gatekeeper: letters checked before they print"'


def _job(args: Sequence[str], environ: Mapping[str, str]) -> PrintJob:
    server = environ.get("CUPS_SERVER", "localhost")
    if not server.startswith("/") and ":" not in server:
        server = f"{server}:{environ.get('IPP_PORT', '631')}"
    try:
        copies = max(1, int(args[3]))
    except ValueError:
        copies = 1
    return PrintJob(
        job_id=int(args[0]),
        user=args[1],
        title=args[2],
        copies=copies,
        queue=environ.get("PRINTER", ""),
        server=server,
    )


def _inner(environ: Mapping[str, str]) -> tuple[str, Path]:
    """The real printer's URI and its backend program; ValueError when the URI is unusable."""
    uri = environ.get("DEVICE_URI", "")
    scheme, _, inner = uri.partition(":")
    inner_scheme = inner.partition(":")[0]
    if scheme != SCHEME or not _INNER_SCHEME.fullmatch(inner_scheme) or inner_scheme == SCHEME:
        raise ValueError(
            f"the queue's device URI must be {SCHEME}:<the printer's own URI>, not {uri!r}"
        )
    serverbin = environ.get("CUPS_SERVERBIN", "/usr/lib/cups")
    program = Path(serverbin) / "backend" / inner_scheme
    if not program.is_file():
        raise ValueError(f"there is no CUPS backend for {inner_scheme}: (looked for {program})")
    return inner, program


def _print(
    inner: str,
    program: Path,
    args: Sequence[str],
    pdf: bytes,
    environ: Mapping[str, str],
) -> int:
    """Run the real printer's backend on the stamped PDF; its exit status is the job's."""
    folder = environ.get("TMPDIR") or None
    with tempfile.NamedTemporaryFile(prefix="gatekeeper-", suffix=".pdf", dir=folder) as stamped:
        stamped.write(pdf)
        stamped.flush()
        env = {**environ, "DEVICE_URI": inner}
        child = subprocess.Popen(
            [inner, *args[:5], stamped.name],
            executable=str(program),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        # CUPS cancels a job with SIGTERM: pass it on, so the printer connection closes.
        previous = signal.signal(signal.SIGTERM, lambda *_: child.terminate())
        try:
            return child.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)


def run(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    service: str = DEFAULT_SERVICE,
    timeout: float = DEFAULT_TIMEOUT,
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """The backend; returns its exit status. Never raises."""
    err = stderr or sys.stderr
    try:
        return _run(
            argv,
            environ,
            service=service,
            timeout=timeout,
            stdin=stdin or sys.stdin.buffer,
            stdout=stdout or sys.stdout,
            stderr=err,
        )
    except Exception as exc:  # a crashed backend stops the queue: hold this one job instead
        _say(
            err,
            "ERROR",
            f"Gatekeeper: held, the letter could not be checked ({type(exc).__name__}: {exc})",
        )
        return CUPS_BACKEND_HOLD


def _run(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    service: str,
    timeout: float,
    stdin: IO[bytes],
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    args = list(argv[1:])
    if not args:
        stdout.write(discovery_line() + "\n")
        return CUPS_BACKEND_OK
    if len(args) not in (5, 6):
        stderr.write("Usage: gatekeeper job-id user title copies options [file]\n")
        return CUPS_BACKEND_FAILED
    job = _job(args, environ)
    try:
        inner, program = _inner(environ)
    except ValueError as exc:
        _say(stderr, "ERROR", f"Gatekeeper: held: {exc}")
        return CUPS_BACKEND_HOLD
    if len(args) == 6:
        with open(args[5], "rb") as document:
            data = document.read(MAX_JOB_BYTES + 1)
    else:
        data = stdin.read(MAX_JOB_BYTES + 1)
    if len(data) > MAX_JOB_BYTES:
        _say(stderr, "ERROR", "Gatekeeper: held: the print job is too large to check")
        return CUPS_BACKEND_HOLD
    _say(stderr, "INFO", "Gatekeeper: checking the letter")
    headers = {JOB_HEADER: job.header(), "Content-Type": "application/pdf"}
    try:
        answer = _call(service, timeout, "/letters", data, headers)
        action = Action(answer["action"])
        message = str(answer.get("message") or "")
        ref = str(answer.get("ref") or "")
    except Exception as exc:
        _say(
            stderr,
            "ERROR",
            "Gatekeeper: held, the letters service could not check the letter "
            f"({type(exc).__name__}: {exc}); release the job once it runs again",
        )
        return CUPS_BACKEND_HOLD
    if action is Action.HOLD:
        _say(stderr, "ERROR", message)
        return CUPS_BACKEND_HOLD
    if action is Action.CANCEL:
        _say(stderr, "ERROR", message)
        return CUPS_BACKEND_CANCEL
    pdf = base64.b64decode(answer.get("pdf") or "")
    if not pdf:
        _say(stderr, "ERROR", f"Gatekeeper: held, no stamped letter came back (ref {ref})")
        return CUPS_BACKEND_HOLD
    _say(stderr, "INFO", message)
    status = _print(inner, program, args, pdf, environ)
    with contextlib.suppress(Exception):  # the printing happened; the record is best effort
        report = json.dumps({"job_id": job.job_id, "status": status}).encode()
        _call(
            service,
            timeout,
            f"/letters/{ref}/printed",
            report,
            {"Content-Type": "application/json"},
        )
    return status


def main(service: str = DEFAULT_SERVICE, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Entry point of the installed backend script (`gatekeeper post install-backend`)."""
    return run(sys.argv, os.environ, service=service, timeout=timeout)
