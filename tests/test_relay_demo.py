"""`gatekeeper demo` as a newcomer runs it: a relay a mail client can use, mail filed locally,
and a print queue whose letters are checked, filed locally or held for a checker."""

from __future__ import annotations

import json
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

from gatekeeper.post.private_cups import INSTALL_HINT, cups_installed
from tests.conftest import gatekeeper_command, need_program, run_gatekeeper
from tests.smtp_peers import email, wait_for

PORTS = 6  # the relay, sink, metrics, web pages, letters service and CUPS


def free_ports_in_a_row() -> int:
    """A port whose next five are free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first > 65000:
            continue
        try:
            for offset in range(1, PORTS):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", first + offset))
        except OSError:
            continue
        return int(first)
    raise AssertionError(f"no {PORTS} free ports in a row")


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return match.group(1)


def test_the_demo_runs_a_relay_a_mail_client_can_send_through_and_a_print_queue(
    isolated_home: Path,
) -> None:
    port = free_ports_in_a_row()
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

        assert f"the letters service checks each print job (http://127.0.0.1:{port + 4}" in shown
        if not cups_installed():
            assert INSTALL_HINT in shown
        for program in ("cupsd", "lpadmin", "lp", "lpstat"):
            need_program(program)
        prints_letters(shown, port + 5)
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(120) == 0


def prints_letters(shown: str, cups_port: int) -> None:
    """The sample letters through the demo's queue: one prints, one waits for the checker."""
    command = found(r"\n  (lp -h \S+ -d gatekeeper-demo -U \S+) LETTER\.pdf\n", shown).split()
    assert command[2] == f"127.0.0.1:{cups_port}"
    printed = Path(found(r"Printed letters .* are filed in (\S+)\n", shown))
    correct = found(r"\n  (\S+/correct-address\.pdf): prints", shown)
    wrong = found(r"\n  (\S+/wrong-address\.pdf): held", shown)
    checker = found(r"checker: (\S+)\s+password", shown)

    def filed() -> list[Path]:
        return sorted(printed.glob("*.pdf"))

    subprocess.run([*command, correct], check=True, capture_output=True, timeout=60)
    first = wait_for(filed, "the correct letter filed by the demo's printer", 300)[0].read_bytes()
    assert first.startswith(b"%PDF-")
    assert first != Path(correct).read_bytes()  # stamped with its page codes on the way

    subprocess.run([*command, wrong], check=True, capture_output=True, timeout=60)

    def held_letter() -> dict[str, object] | None:
        listed = run_gatekeeper("held", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        for line in listed.stdout.splitlines():
            item = json.loads(line)
            if any(f["check"] == "postal_address_mismatch" for f in item["findings"]):
                return dict(item)
        return None

    held = wait_for(held_letter, "the wrong-address letter held for a checker", 300)
    assert len(filed()) == 1  # the backend held the job: nothing reached the printer
    approved = run_gatekeeper("held", "approve", str(held["ref"]), "--as", checker)
    assert approved.returncode == 0, approved.stderr
    wait_for(lambda: len(filed()) == 2, "the approved letter filed by the demo's printer", 300)
