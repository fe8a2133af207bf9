"""`gatekeeper demo`'s approval pages: the web app beside the demo relay, and something to check.

So that a newcomer's queue is not empty, two sample messages go through the
demo relay as the demo sender, each with a mistake the gate holds: one to a
look-alike of a party's address, one about one family sent to another's party.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, make_msgid
from pathlib import Path

import uvicorn
from sqlalchemy import Engine, func, select

from gatekeeper.config import Settings
from gatekeeper.sample import open_case_parents
from gatekeeper.store.correspondence import Item, ItemState
from gatekeeper.store.models import Party, PartyEmail

log = logging.getLogger(__name__)


class DemoServer:
    """A uvicorn server (the web app, the letters service) run in the demo's own event loop."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def web(cls, settings: Settings, engine: Engine) -> DemoServer:
        from gatekeeper.web.server import server

        return cls(server(settings, engine))

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises why it could not start
                raise OSError("the server could not listen")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.task


def _examples(engine: Engine, sender: str, name: str) -> list[tuple[str, EmailMessage]]:
    with engine.connect() as conn:
        if conn.execute(
            select(func.count()).select_from(Item).where(Item.state == ItemState.HELD.value)
        ).scalar_one():
            return []  # there is something to check already
        rows = conn.execute(
            open_case_parents()
            .add_columns(PartyEmail.address)
            .join(PartyEmail, PartyEmail.party_id == Party.party_id)
            .limit(2)
        ).all()
    if len(rows) < 2:
        return []
    (case_a, name_a, address_a), (_case_b, _name_b, address_b) = rows
    local, _, domain = address_a.partition("@")
    lookalike = f"{local}@{domain.replace('example', 'exmaple', 1)}"
    first = name_a.split()[0]
    messages = []
    for to, subject, body in (
        (
            lookalike,
            "Contact arrangements",
            f"Dear {first},\n\nI am writing to confirm the contact arrangements for next week."
            f" Please let me know if the times do not suit you.\n\nKind regards\n{name}\n",
        ),
        (
            address_b,
            f"Hearing update, case {case_a}",
            f"Dear {first},\n\nAn update after the hearing in case {case_a}: the court has"
            f" asked for the school reports before the next date.\n\nKind regards\n{name}\n",
        ),
    ):
        message = EmailMessage(policy=SMTP)
        message["From"] = formataddr((name, sender))
        message["To"] = formataddr((name_a, to))
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
        message.set_content(body)
        messages.append((to, message))
    return messages


def send_examples(
    engine: Engine,
    relay: tuple[str, int],
    cert: Path,
    sender: tuple[str, str, str],
) -> int:
    """Send the sample messages through the demo relay (blocking); how many went."""
    address, name, password = sender
    examples = _examples(engine, address, name)
    if not examples:
        return 0
    context = ssl.create_default_context(cafile=str(cert))
    with smtplib.SMTP(*relay, timeout=120) as client:
        client.starttls(context=context)
        client.login(address, password)
        for to, message in examples:
            client.send_message(message, from_addr=address, to_addrs=[to])
    return len(examples)
