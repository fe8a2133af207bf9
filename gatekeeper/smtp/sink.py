"""The demo's upstream: a small SMTP server that files each delivered message in a folder.

A newcomer's machine has no Postfix; with this the demo relay has somewhere to
deliver, and what "left" can be read as `.eml` files, byte for byte as sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


class FolderSink:
    """aiosmtpd handler: every message becomes `<time>-<n>.eml`, envelope in a side file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{next(self._numbers):04d}.eml"
        path.write_bytes(envelope.original_content or b"")
        path.with_suffix(".envelope").write_text(
            f"MAIL FROM:<{envelope.mail_from}>\n"
            + "".join(f"RCPT TO:<{r}>\n" for r in envelope.rcpt_tos)
        )
        return "250 2.0.0 filed"


async def start_sink(folder: Path, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    handler = FolderSink(folder)
    return await loop.create_server(
        lambda: SMTP(handler, decode_data=False, enable_SMTPUTF8=True, hostname="demo-sink"),
        host,
        port,
    )
