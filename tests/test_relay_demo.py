"""`gatekeeper demo` as a newcomer runs it: a relay a mail client can use, mail filed locally."""

from __future__ import annotations

import re
import signal
import smtplib
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

from tests.conftest import gatekeeper_command
from tests.smtp_peers import email, wait_for


def three_free_ports() -> int:
    """A port whose next three are free too (the demo's relay, sink, metrics and web pages)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first > 65000:
            continue
        try:
            for offset in (1, 2, 3):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", first + offset))
        except OSError:
            continue
        return int(first)
    raise AssertionError("no three free ports in a row")


def test_the_demo_runs_a_relay_a_mail_client_can_send_through(isolated_home: Path) -> None:
    port = three_free_ports()
    demo = subprocess.Popen(
        [*gatekeeper_command(), "demo", "--cases", "25", "--staff", "8", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        shown = ""
        while "Stop with Ctrl-C." not in shown:
            line = demo.stdout.readline()
            assert line, f"the demo stopped:\n{shown}\n{demo.stderr.read() if demo.stderr else ''}"
            shown += line
        sender, password = re.search(r"sender:\s+(\S+)\s+password: (\S+)", shown).groups()  # type: ignore[union-attr]
        cert = re.search(r"trust (\S+cert\.pem)", shown).group(1)  # type: ignore[union-attr]
        assert f"server 127.0.0.1, port {port}, STARTTLS" in shown
        assert f'The approval pages ("fresh eyes"): http://127.0.0.1:{port + 3}/' in shown
        assert "2 sample messages were sent as the sender and held" in shown
        with urllib.request.urlopen(f"http://127.0.0.1:{port + 3}/login", timeout=60) as page:
            assert page.status == 200 and b"Sign in" in page.read()

        with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
            client.starttls(context=ssl.create_default_context(cafile=cert))
            client.login(sender, password)
            message = email(sender, "someone@example.org", "Trying the demo", "Hello there.\n")
            refused = client.sendmail(sender, ["someone@example.org"], message.as_bytes())
            assert refused == {}
        delivered = isolated_home / "data" / "demo" / "delivered"
        filed = wait_for(
            lambda: [
                f for f in delivered.glob("*.eml") if b"Subject: Trying the demo" in f.read_bytes()
            ],
            "a delivered message on disk",
        )
        assert re.search(rb"X-Gatekeeper-Decision: released; ref=\w{8}", filed[0].read_bytes())
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(120) == 0
