"""The relay as staff meet it: real SMTP clients, a real relay process, smtp-sink upstream.

One relay and one sink serve the whole module, once on SQLite and once on
PostgreSQL. Each test sends what a member of staff would and checks what they
would notice: the reply, what arrives upstream, the notice they get, what a
checker sees.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import need_program, run_gatekeeper
from tests.smtp_peers import (
    TRUSTED_SOURCE,
    RelayProcess,
    SmtpSink,
    World,
    email,
    prepared_world,
    ref_of,
    wait_for,
)

SIZE_LIMIT = 1_000_000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with prepared_world(request.param, tmp_path_factory.mktemp(f"relay-{request.param}")) as world:
        yield world


@pytest.fixture(scope="module")
def sink(world: World) -> Iterator[SmtpSink]:
    started = SmtpSink().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def relay(world: World, sink: SmtpSink) -> Iterator[RelayProcess]:
    started = RelayProcess(
        world, sink.port, data_size_limit=SIZE_LIMIT, record_refresh_seconds=0.5
    ).start()
    yield started
    assert started.stop() == 0, started.log()


def clean_message(world: World, subject: str = "Hearing on Tuesday") -> bytes:
    s = world.scenario
    body = (
        f"Dear {s.release_greeting},\n\nThank you for your letter. I will call you tomorrow"
        " morning to agree a time for the meeting.\n\nKind regards\n"
    )
    return email(world.sender.email, s.release_to, subject, body).as_bytes()


def without_trace(content: bytes) -> bytes:
    """A delivered message's own bytes: our two trace headers (the first four lines) removed."""
    lines = content.split(b"\n")
    assert lines[0].startswith(b"Received: from client.test") and lines[3].startswith(
        b"X-Gatekeeper-Decision:"
    )
    return b"\n".join(lines[4:])


def as_captured(raw: bytes) -> bytes:
    """`raw` as smtp-sink writes it: LF line ends, and one empty line after."""
    return raw.replace(b"\r\n", b"\n") + b"\n"


def test_a_clean_message_is_released_and_arrives_as_written_with_trace_headers(
    world: World, relay: RelayProcess, sink: SmtpSink
) -> None:
    raw = clean_message(world)
    code, reply = relay.submit(world.sender, raw)
    assert code == 250 and reply.startswith("2.0.0 "), reply
    ref = ref_of(reply)
    to = world.scenario.release_to
    arrived = wait_for(lambda: [m for m in sink.to(to) if m.decision_ref == ref], "delivery")
    assert len(arrived) == 1
    delivered = arrived[0]
    assert delivered.mail_from == world.sender.email
    assert delivered.message["X-Gatekeeper-Decision"] == f"released; ref={ref}"
    assert f"by relay-test (Gatekeeper) with ESMTPSA id {ref};" in delivered.content.decode()
    assert without_trace(delivered.content) == as_captured(raw)
    item = world.item(ref)
    assert (item.state, item.sender, item.verdict) == ("released", world.sender.email, "release")


def test_a_risky_message_is_held_and_leaves_unchanged_once_another_person_approves(
    world: World, relay: RelayProcess, sink: SmtpSink
) -> None:
    s = world.scenario
    raw = email(
        world.sender.email,
        s.lookalike_to,
        "Contact next week",
        "Hello,\n\nHere are the arrangements for contact next week.\n",
    ).as_bytes()
    code, reply = relay.submit(world.sender, raw)
    assert code == 250 and reply.startswith("2.0.0 held for a second check, ref "), reply
    ref = ref_of(reply)

    listed = run_gatekeeper("held", "list", "--json", db=world.database_url)
    entries = {e["ref"]: e for e in map(json.loads, listed.stdout.splitlines())}
    assert ref in entries and entries[ref]["recipients"] == [s.lookalike_to]
    assert "recipient_lookalike" in [f["check"] for f in entries[ref]["findings"]]

    notice = wait_for(
        lambda: [m for m in sink.to(world.sender.email) if ref in str(m.message["Subject"])],
        "the held notice",
    )
    assert notice[0].mail_from == ""  # notices go with the null sender: they never bounce back
    assert str(notice[0].message["Subject"]).startswith("Held for a second check")

    own = run_gatekeeper("held", "approve", ref, "--as", world.sender.email, db=world.database_url)
    assert own.returncode == 1 and "the second check must be someone else's" in own.stderr
    not_checker = run_gatekeeper(
        "held", "approve", ref, "--as", world.colleague.email, db=world.database_url
    )
    assert not_checker.returncode == 1 and "does not have the checker role" in not_checker.stderr
    assert sink.to(s.lookalike_to) == []

    approved = run_gatekeeper(
        "held", "approve", ref, "--as", world.checker.email, db=world.database_url
    )
    assert approved.returncode == 0, approved.stderr
    arrived = wait_for(lambda: sink.to(s.lookalike_to), "delivery after approval")
    assert arrived[0].message["X-Gatekeeper-Decision"] == f"approved; ref={ref}"
    assert without_trace(arrived[0].content) == as_captured(raw)

    again = run_gatekeeper(
        "held", "approve", ref, "--as", world.checker.email, db=world.database_url
    )
    assert again.returncode == 1
    assert f"{ref} was already decided: approve by {world.checker.email}" in again.stderr


def test_a_checker_can_return_a_held_message_and_the_sender_gets_the_note(
    world: World, relay: RelayProcess, sink: SmtpSink
) -> None:
    s = world.scenario
    raw = email(world.sender.email, s.lookalike_to, "Second try", "Hello again.\n").as_bytes()
    ref = ref_of(relay.submit(world.sender, raw)[1])
    returned = run_gatekeeper(
        "held",
        "reject",
        ref,
        "--as",
        world.checker.email,
        "--note",
        "Wrong address: use the one on the record.",
        db=world.database_url,
    )
    assert returned.returncode == 0, returned.stderr
    notice = wait_for(
        lambda: [
            m
            for m in sink.to(world.sender.email)
            if str(m.message["Subject"]).startswith("Returned by a checker")
            and ref in str(m.message["Subject"])
        ],
        "the returned notice",
    )
    text = notice[0].message.get_payload(decode=True).decode()
    assert "Wrong address: use the one on the record." in text
    assert world.item(ref).state == "returned"
    assert not [m for m in sink.to(s.lookalike_to) if m.decision_ref == ref]


def test_a_dangerous_message_is_refused_with_the_finding_and_recorded(
    world: World, relay: RelayProcess, sink: SmtpSink
) -> None:
    s = world.scenario
    raw = email(world.sender.email, s.leak_to, "Update", f"Hello,\n\n{s.leak_text}\n").as_bytes()
    code, reply = relay.submit(world.sender, raw)
    assert code == 550 and reply.startswith("5.7.1 "), reply
    ref = ref_of(reply)
    assert "\n" not in reply and len(reply) < 510
    item = world.item(ref)
    assert item.state == "blocked"
    assert item.findings[0]["summary"][:60] in reply
    notice = wait_for(
        lambda: [
            m
            for m in sink.to(world.sender.email)
            if str(m.message["Subject"]).startswith("Not sent") and ref in str(m.message["Subject"])
        ],
        "the blocked notice",
    )
    assert "What to do next" in notice[0].message.get_payload(decode=True).decode()
    assert sink.to(s.leak_to) == []


def test_an_unauthenticated_client_outside_the_trusted_network_may_not_relay(
    world: World, relay: RelayProcess
) -> None:
    smtp = relay.connect()
    smtp.ehlo()
    assert smtp.mail(world.sender.email) == (530, b"5.7.0 Authentication required")
    smtp.close()


def test_a_trusted_front_mta_relays_without_auth(
    world: World, relay: RelayProcess, sink: SmtpSink
) -> None:
    raw = clean_message(world, "Via the front MTA")
    code, reply = relay.submit(None, raw, mail_from=world.sender.email, source=TRUSTED_SOURCE)
    assert code == 250, reply
    ref = ref_of(reply)
    wait_for(
        lambda: [m for m in sink.to(world.scenario.release_to) if m.decision_ref == ref], "delivery"
    )
    item = world.item(ref)
    assert item.sender == world.sender.email
    assert item.envelope["client"]["protocol"] == "ESMTP"


def test_auth_is_refused_before_starttls(world: World, relay: RelayProcess) -> None:
    smtp = relay.connect()
    smtp.ehlo()
    assert not smtp.has_extn("auth")
    credentials = base64.b64encode(f"\0{world.sender.email}\0{world.sender.password}".encode())
    code, text = smtp.docmd("AUTH", "PLAIN " + credentials.decode())
    assert (code, text[:6]) == (538, b"5.7.11")
    smtp.starttls(context=world.client_tls())
    smtp.ehlo()
    assert smtp.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
    smtp.close()


def test_a_wrong_password_is_refused(world: World, relay: RelayProcess) -> None:
    smtp = relay.connect()
    smtp.starttls(context=world.client_tls())
    with pytest.raises(Exception) as refused:
        smtp.login(world.sender.email, "not the password at all")
    assert "535" in str(refused.value) and "5.7.8" in str(refused.value)
    smtp.close()


def test_sending_as_someone_else_is_refused_unless_granted(
    world: World, relay: RelayProcess, sink: SmtpSink
) -> None:
    s = world.scenario
    raw = clean_message(world, "Spoofed envelope")
    code, reply = relay.submit(world.sender, raw, mail_from=world.colleague.email)
    assert (code, reply[:5]) == (553, "5.7.1") and world.colleague.email in reply
    spoofed = email(world.colleague.email, s.release_to, "Spoofed From", "Hello.\n").as_bytes()
    code, reply = relay.submit(world.sender, spoofed, mail_from=world.sender.email)
    assert (code, reply[:5]) == (550, "5.7.1") and "From: header" in reply
    assert not [m for m in sink.to(s.release_to) if b"Spoofed" in m.content]

    team = "north-team@gatekeeper.example"
    granted = run_gatekeeper(
        "users", "send-as", world.sender.email, "--add", team, db=world.database_url
    )
    assert granted.returncode == 0 and team in granted.stdout
    as_team = email(
        team, s.release_to, "From the team mailbox", f"Dear {s.release_greeting},\n\nThanks.\n"
    )
    code, reply = relay.submit(world.sender, as_team.as_bytes(), mail_from=team)
    assert code == 250, reply


def test_an_oversize_message_is_refused_with_552(world: World, relay: RelayProcess) -> None:
    big = email(world.sender.email, world.scenario.release_to, "Big", "x" * 76 + "\n")
    big.set_content(("y" * 76 + "\n") * (SIZE_LIMIT // 77 + 100))
    code, reply = relay.submit(world.sender, big.as_bytes())
    assert (code, reply[:5]) == (552, "5.3.4"), reply
    smtp = relay.signed_in(world.sender)
    code, text = smtp.mail(world.sender.email, [f"SIZE={SIZE_LIMIT * 2}"])
    assert (code, text[:5]) == (552, b"5.3.4")
    smtp.close()


def test_swaks_and_msmtp_send_through_starttls_and_auth(
    world: World, relay: RelayProcess, sink: SmtpSink, tmp_path: Path
) -> None:
    s = world.scenario
    swaks = need_program("swaks")
    sent = subprocess.run(
        [
            swaks,
            "--server",
            f"127.0.0.1:{relay.port}",
            "--tls",
            "--auth",
            "LOGIN",
            "--auth-user",
            world.sender.email,
            "--auth-password",
            world.sender.password,
            "--from",
            world.sender.email,
            "--to",
            s.release_to,
            "--header",
            "Subject: by swaks",
            "--body",
            f"Dear {s.release_greeting},\n\nThank you, see you on Tuesday.\n",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "<~  250 2.0.0 Checked and queued for delivery, ref " in sent.stdout

    msmtp = need_program("msmtp")
    config = tmp_path / "msmtprc"
    config.write_text(
        f"account default\nhost 127.0.0.1\nport {relay.port}\ntls on\ntls_starttls on\n"
        f"tls_trust_file {world.cert}\nauth plain\nuser {world.sender.email}\n"
        f"password {world.sender.password}\nfrom {world.sender.email}\n"
    )
    config.chmod(0o600)
    message = email(
        world.sender.email,
        s.release_to,
        "by msmtp",
        f"Dear {s.release_greeting},\n\nConfirmed for Tuesday.\n",
    )
    sent = subprocess.run(
        [msmtp, "-C", str(config), "-t"],
        input=message.as_bytes(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr.decode()
    for subject in ("by swaks", "by msmtp"):
        wait_for(
            lambda subject=subject: [
                m
                for m in sink.to(s.release_to)  # type: ignore[misc]
                if m.message["Subject"] == subject
            ],
            subject,
        )


def test_the_health_check_and_metrics_show_the_relay_at_work(
    world: World, relay: RelayProcess
) -> None:
    base = f"http://127.0.0.1:{relay.metrics_port}"
    with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"ok": True, "problems": []}
    relay.submit(world.sender, clean_message(world, "Counted"))
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        metrics = response.read().decode()
    assert 'gatekeeper_relay_messages_total{outcome="release"}' in metrics
    assert "gatekeeper_outbound_queue_depth" in metrics
    assert 'gatekeeper_relay_stage_seconds_count{stage="analysis"}' in metrics


def test_a_password_set_on_the_command_line_signs_in_to_the_relay(
    world: World, relay: RelayProcess
) -> None:
    email_address, new = world.colleague.email, "a much newer passphrase"
    weak = run_gatekeeper(
        "users",
        "set-password",
        email_address,
        "--password-stdin",
        db=world.database_url,
        input="short\n",
    )
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    nobody = run_gatekeeper(
        "users",
        "set-password",
        "nobody@gatekeeper.example",
        "--password-stdin",
        db=world.database_url,
        input=f"{new}\n",
    )
    assert nobody.returncode == 1 and "no member of staff" in nobody.stderr
    done = run_gatekeeper(
        "users",
        "set-password",
        email_address,
        "--password-stdin",
        db=world.database_url,
        input=f"{new}\n",
    )
    assert done.returncode == 0, done.stderr
    smtp = relay.connect()
    smtp.starttls(context=world.client_tls())
    assert smtp.login(email_address, new)[0] == 235
    smtp.close()


def test_a_case_imported_while_the_relay_runs_is_checked_against(
    world: World, relay: RelayProcess, tmp_path: Path
) -> None:
    case = {
        "case_id": "990001",
        "status": "open",
        "parties": [
            {
                "party_id": "990001-P1",
                "role": "child",
                "name": "Quinn Okafor",
                "contact_allowed": False,
            },
            {
                "party_id": "990001-P2",
                "role": "applicant",
                "name": "Adaeze Okafor",
                "emails": ["adaeze.okafor@example.net"],
            },
        ],
    }
    imported = run_gatekeeper(
        "cases", "import", "-", db=world.database_url, input=json.dumps(case) + "\n"
    )
    assert imported.returncode == 0, imported.stderr
    wait_for(lambda: "reloaded the case record" in relay.log(), "the relay to reload the record")
    lookalike = email(
        world.sender.email,
        "adaeze.okafor@exampel.net",
        "Contact",
        "Dear Adaeze,\n\nHere are the contact arrangements.\n",
    )
    code, reply = relay.submit(world.sender, lookalike.as_bytes())
    assert code == 250 and "held for a second check" in reply, reply
    findings = world.item(ref_of(reply)).findings
    assert "adaeze.okafor@example.net" in findings[0]["summary"]


def _cpus(pid: int, tid: int | None = None) -> frozenset[int]:
    """The CPUs a process (or one of its threads) may run on."""
    return frozenset(os.sched_getaffinity(tid if tid is not None else pid))


def _gate_workers(pid: int) -> list[int]:
    """The relay's gate worker processes (multiprocessing's spawned children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():  # each thread lists what it started
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


def test_the_relays_own_threads_share_one_cpu_and_its_gate_workers_use_them_all(
    relay: RelayProcess,
) -> None:
    # Placed after the record reload above, so the workers checked are the replacements.
    allowed = frozenset(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("one CPU: relay_cpu = auto leaves it to everyone")
    assert relay.process is not None
    pid = relay.process.pid
    threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    assert len(threads) > 3  # event loop, store writer, store and delivery threads
    assert {_cpus(pid, tid) for tid in threads} == {frozenset({min(allowed)})}
    workers = _gate_workers(pid)
    assert workers, "no gate worker found"
    for worker in workers:
        for tid in os.listdir(f"/proc/{worker}/task"):
            assert _cpus(worker, int(tid)) == allowed


def gate_messages(relay: RelayProcess) -> dict[str, float]:
    """`gatekeeper_gate_messages` from the relay's /metrics, by where they are."""
    url = f"http://127.0.0.1:{relay.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    found = re.findall(r'^gatekeeper_gate_messages\{where="(\w+)"\} (\S+)$', text, re.M)
    return {where: float(value) for where, value in found}


def test_the_metrics_count_the_messages_at_the_gate(world: World, relay: RelayProcess) -> None:
    assert relay.process is not None
    workers = _gate_workers(relay.process.pid)
    assert workers, "no gate worker found"
    for worker in workers:  # the checks stand still: messages pile up at the gate
        os.kill(worker, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(3) as clients:
            replies = [
                clients.submit(
                    relay.submit,
                    None,
                    clean_message(world, f"Queued {n}"),
                    mail_from=world.sender.email,
                    source=TRUSTED_SOURCE,
                )
                for n in range(3)
            ]

            def all_at_the_gate() -> dict[str, float] | None:
                counted = gate_messages(relay)
                return counted if sum(counted.values()) == 3 else None

            counted = wait_for(all_at_the_gate, "three messages at the gate")
            assert counted["in_worker"] >= 1
            for worker in workers:
                os.kill(worker, signal.SIGCONT)
            assert [r.result(timeout=300)[0] for r in replies] == [250, 250, 250]
    finally:
        for worker in workers:
            os.kill(worker, signal.SIGCONT)
    assert gate_messages(relay) == {"in_worker": 0.0, "waiting": 0.0}
