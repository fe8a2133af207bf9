"""`gatekeeper demo`'s relay: TLS, two accounts, a folder sink, and where to point a client.

Beside it, in the same event loop: the approval pages and the letters side
(`gatekeeper.post.demo`), each on the next port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine

from gatekeeper.cli.context import EXIT_UNUSABLE
from gatekeeper.config import Settings
from gatekeeper.logs import configure_json_logging
from gatekeeper.passwords import hash_password
from gatekeeper.post.demo import DemoLetters
from gatekeeper.sample import INTERNAL_DOMAIN
from gatekeeper.smtp.gatepool import GateUnavailable
from gatekeeper.smtp.relay import Relay
from gatekeeper.smtp.selfsigned import write_self_signed
from gatekeeper.smtp.sink import start_sink
from gatekeeper.store.staff import set_password

DEMO_PASSWORD = "gatekeeper-demo"
HOST = "127.0.0.1"


def serve_demo(
    settings: Settings, engine: Engine, folder: Path, staff: list[dict[str, Any]], port: int
) -> None:
    """Run the relay on the demo record until Ctrl-C."""
    cert, key = write_self_signed(folder / "tls")
    sender = next(s for s in staff if s["roles"] == ["staff"])
    checker = next(s for s in staff if "checker" in s["roles"])
    governance = next((s for s in staff if "governance" in s["roles"]), checker)
    hashed = hash_password(DEMO_PASSWORD)
    for person in (sender, checker, governance):
        set_password(engine, person["email"], hashed)
    delivered = folder / "delivered"
    base = dataclasses.replace(settings, letters_socket="")  # the demo's own letters service
    demo = base.with_overrides(
        relay_host=HOST,
        relay_port=port,
        tls_cert_file=str(cert),
        tls_key_file=str(key),
        upstream_host=HOST,
        upstream_port=port + 1,
        upstream_starttls=False,
        metrics_port=port + 2,
        internal_domains=settings.internal_domains or (INTERNAL_DOMAIN,),
        web_host=HOST,
        web_port=port + 3,
        letters_host=HOST,
        letters_port=port + 4,
        cups_server=f"{HOST}:{port + 5}",  # where approving a held letter releases its job
    )
    letters = DemoLetters(
        demo, engine, folder, cups_port=port + 5, sender=(sender["email"], sender["name"])
    )

    def announce() -> None:
        click.echo(
            f"""
The relay is running. Point a mail client's outgoing server at it:
  server {HOST}, port {port}, STARTTLS, normal password
  sender:  {sender["email"]}  password: {DEMO_PASSWORD}
  checker: {checker["email"]}  password: {DEMO_PASSWORD}  (approves held mail)
  the certificate is self-signed: accept it, or trust {cert}
Or from a shell:
  swaks --server {HOST}:{port} -tls --auth-user {sender["email"]} \\
    --auth-password {DEMO_PASSWORD} --from {sender["email"]} --to someone@example.org
Mail that leaves is filed in {delivered}
Held mail: gatekeeper held list; gatekeeper held approve REF --as {checker["email"]}
Health and metrics: http://{HOST}:{port + 2}/healthz and /metrics

The approval pages ("fresh eyes"): http://{HOST}:{port + 3}/
  as the checker:    {checker["email"]}  password: {DEMO_PASSWORD}  (decides held mail)
  as the sender:     {sender["email"]}  password: {DEMO_PASSWORD}  (their own held mail)
  as governance:     {governance["email"]}  password: {DEMO_PASSWORD}  (canaries, audit trail)
  {examples["sent"] or "No"} sample messages were sent as the sender and held: open the queue.
{letters.announcement()}
Stop with Ctrl-C."""
        )

    configure_json_logging("WARNING")
    click.echo("\nStarting the relay (each gate worker loads the record and language model)...")
    examples = {"sent": 0}

    def send_examples() -> None:
        from gatekeeper.web.demo import send_examples as send

        examples["sent"] = send(
            engine, (HOST, port), cert, (sender["email"], sender["name"], DEMO_PASSWORD)
        )

    try:
        asyncio.run(
            _serve(
                demo, delivered, announce, engine=engine, letters=letters, examples=send_examples
            )
        )
    except (GateUnavailable, OSError) as exc:
        click.echo(f"gatekeeper: the demo relay cannot start: {exc}", err=True)
        sys.exit(EXIT_UNUSABLE)


async def _serve(
    settings: Settings,
    delivered: Path,
    announce: Callable[[], None],
    *,
    engine: Engine,
    letters: DemoLetters,
    examples: Callable[[], None],
) -> None:
    from gatekeeper.web.demo import DemoServer

    sink = await start_sink(delivered, settings.upstream_host, settings.upstream_port)
    relay = Relay(settings)
    web = DemoServer.web(settings, engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await relay.start()
        await web.start()
        await letters.start()
        await asyncio.to_thread(examples)
        announce()
        await stop.wait()
    finally:
        await letters.stop()
        await web.stop()
        await relay.stop()
        sink.close()
        with contextlib.suppress(Exception):
            await sink.wait_closed()
