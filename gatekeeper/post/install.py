"""Installing the CUPS backend: a three-line script in CUPS's backend folder.

The script runs this installation's Python in isolated mode (no environment
variable can change what it imports) and calls `gatekeeper.post.backend`
with the letters service's address written in, since CUPS gives backends a
bare environment. Mode 0755, owned by root: CUPS then runs it as its own
unprivileged user (`lp`), as it runs the network backends it wraps. (A 0700
backend would run as root, which only a USB printer's backend needs.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gatekeeper.config import Settings
from gatekeeper.post.backend import SCHEME

DEFAULT_BACKEND_DIR = Path("/usr/lib/cups/backend")


def service_address(settings: Settings) -> str:
    """Where the backend finds the letters service: `unix:/path` or `http://host:port`."""
    if settings.letters_socket:
        return f"unix:{settings.letters_socket}"
    host = settings.letters_host
    host = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "[::]"):  # listening everywhere: call it on this machine
        host = "127.0.0.1"
    return f"http://{host}:{settings.letters_port}"


def backend_script(settings: Settings, python: str | None = None) -> str:
    interpreter = python or sys.executable
    return (
        f"#!{interpreter} -I\n"
        "# Gatekeeper's CUPS backend, written by `gatekeeper post install-backend`.\n"
        "from gatekeeper.post.backend import main\n"
        f"raise SystemExit(main(service={service_address(settings)!r},"
        f" timeout={float(settings.letters_timeout)!r}))\n"
    )


def install_backend(
    settings: Settings, folder: Path = DEFAULT_BACKEND_DIR, *, as_root: bool = False
) -> Path:
    """Write the backend into `folder` (atomically) and return its path.

    `as_root`: mode 0700, so CUPS runs it as root: for wrapping a backend that needs root
    (usb), or a Python installation its user `lp` cannot read.
    """
    target = folder / SCHEME
    temporary = folder / f".{SCHEME}.new"
    temporary.write_text(backend_script(settings), encoding="utf-8")
    os.chmod(temporary, 0o700 if as_root else 0o755)
    os.replace(temporary, target)
    return target
