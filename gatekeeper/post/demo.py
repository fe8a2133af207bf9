"""`gatekeeper demo`'s letters: the letters service, and a print queue in front of a printer.

The letters service runs in the demo's own event loop, beside the web app.
When CUPS is installed, a private `cupsd` (everything it keeps in the demo's
data folder, on a loopback port of its own) gets a queue `gatekeeper-demo`
whose device is Gatekeeper's backend in front of a printer that files each
printed letter as a PDF, as the demo's mail sink files each message. Two
sample letters are written to try it with.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from sqlalchemy import Engine

from gatekeeper.config import Settings
from gatekeeper.post.install import install_backend, service_address
from gatekeeper.post.private_cups import (
    INSTALL_HINT,
    CupsError,
    FilingPrinter,
    PrivateCups,
    backend_needs_root,
    cups_installed,
)
from gatekeeper.post.samples import SampleLetter, demo_letters
from gatekeeper.post.service import LettersService
from gatekeeper.web.demo import DemoServer

QUEUE = "gatekeeper-demo"


class DemoLetters:
    """The letters service on `letters_port`; with CUPS, a private cupsd on `cups_port`.

    `settings` name this service (`letters_host`, `letters_port`, no `letters_socket`)
    and this cupsd (`cups_server`), so that an approval releases the held job here.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        folder: Path,
        *,
        cups_port: int,
        sender: tuple[str, str],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.folder = folder
        self.sender_email, self.sender_name = sender
        self.service = LettersService(self.settings)
        self.served = DemoServer(self.service.server())
        self.cups = PrivateCups(folder / "cups", cups_port)
        self.printer: FilingPrinter | None = None
        self.samples: list[SampleLetter] = []
        self.no_printer = ""  # why there is no print queue, when there is none

    @property
    def printed(self) -> Path:
        return self.folder / "printed"

    async def start(self) -> None:
        """Serve the letters service (its gate loaded), then the print room beside it."""
        await self.served.start()
        self.samples = await asyncio.to_thread(
            demo_letters, self.engine, self.folder / "letters", self.sender_name
        )
        if cups_installed():
            await asyncio.gather(self.service.wait_ready(), asyncio.to_thread(self._print_room))
        else:
            self.no_printer = f"CUPS is not installed; for the print queue: {INSTALL_HINT}"
            await self.service.wait_ready()

    def _print_room(self) -> None:
        try:
            self.printer = FilingPrinter(self.printed)
            backends = self.cups.prepare()
            # CUPS runs a 0755 backend as its user `lp`; one `lp` cannot start must run as root.
            install_backend(self.settings, backends, as_root=backend_needs_root(self.cups.root))
            self.cups.start()
            self.cups.add_queue(QUEUE, f"gatekeeper:{self.printer.uri}")
        except (CupsError, OSError, subprocess.SubprocessError) as exc:
            self.no_printer = f"the print queue could not start: {exc}"
            self._close_print_room()

    def _close_print_room(self) -> None:
        self.cups.stop()
        if self.printer is not None:
            self.printer.close()
            self.printer = None

    async def stop(self) -> None:
        await asyncio.to_thread(self._close_print_room)
        await self.served.stop()

    def announcement(self) -> str:
        """Where to point a printer, where letters land, and what to print."""
        user = self.sender_email.partition("@")[0]
        service = service_address(self.settings)
        lines = ["", f"Letters: the letters service checks each print job ({service}/healthz)."]
        if self.printer is None:
            lines.append(f"  No printer: {self.no_printer}")
            example = "gatekeeper check letter LETTER.pdf --sender " + self.sender_email
            lines.append(f"  Check a letter without printing it: {example}")
        else:
            server = self.cups.server
            lines += [
                f"Point a printer at the queue {QUEUE} on a private CUPS server, {server}:",
                f"  lp -h {server} -d {QUEUE} -U {user} LETTER.pdf",
                f"  (or add the IPP printer ipp://{server}/printers/{QUEUE})",
                f"Printed letters (with a code on every page) are filed in {self.printed}",
            ]
        if self.samples:
            lines.append(f"Sample letters to {self.samples[0].addressee}, from the sender:")
            lines += [
                f"  {letter.path}: "
                + (letter.printed if self.printer else f"check letter says {letter.verdict}")
                for letter in self.samples
            ]
        return "\n".join(lines)
