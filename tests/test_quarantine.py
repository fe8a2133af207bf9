"""Encrypted quarantine: the database alone reveals no held content, and staff see no change.

One relay (a real process) and one smtp-sink serve the module, once on SQLite
and once on PostgreSQL. The database is read as someone holding only it would
read it: the SQLite file's bytes (with its write-ahead log), or `pg_dump` of
the schema. What staff see is read as they see it: `gatekeeper held show`, the
item page, the message that arrives upstream. The relay seals with the
keyring it generated for the store; the command line and the web app, with
data directories of their own, find it through the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from gatekeeper.config import Settings
from gatekeeper.smtp.intake import new_ref
from gatekeeper.store.correspondence import Item, ItemContent, OutboundMessage
from gatekeeper.web.app import create_app
from tests.conftest import need_program, run_gatekeeper
from tests.smtp_peers import (
    PASSWORD,
    RelayProcess,
    SmtpSink,
    World,
    email,
    prepared_world,
    ref_of,
    wait_for,
)
from tests.web_world import post_form


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with prepared_world(
        request.param, tmp_path_factory.mktemp(f"quarantine-{request.param}")
    ) as world:
        yield world


@pytest.fixture(scope="module")
def sink(world: World) -> Iterator[SmtpSink]:
    started = SmtpSink().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def relay(world: World, sink: SmtpSink) -> Iterator[RelayProcess]:
    started = RelayProcess(world, sink.port).start()
    yield started
    assert started.stop() == 0, started.log()


# -- what the database holds, and what staff see --------------------------------------------


def database_bytes(world: World) -> bytes:
    """Everything an attacker holding only the database has: the SQLite file (and its
    write-ahead log), or a plain `pg_dump` of the PostgreSQL schema."""
    url = make_url(world.database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        files = [Path(url.database), Path(f"{url.database}-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    pg_dump = need_program("pg_dump")
    options = url.query["options"]
    assert isinstance(options, str)
    schema = options.removeprefix("-csearch_path=")
    server = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    dumped = subprocess.run(
        [pg_dump, "--schema", schema, "--no-owner", "--no-privileges", server],
        capture_output=True,
        check=True,
    )
    return dumped.stdout


def secrets_for(label: str) -> tuple[str, str, str]:
    """A subject, a body sentence and an attachment sentence nothing else in the store has."""
    token = uuid.uuid4().hex[:10]
    return (
        f"Quokka {label} bundle {token}",
        f"The marmalade heron {token} sings at the {label} hearing",
        f"Attached minutes {token} of the {label} kinship review",
    )


def message(world: World, to: str, subject: str, body: str, attached: str) -> bytes:
    mail: EmailMessage = email(world.sender.email, to, subject, f"Hello,\n\n{body}.\n")
    mail.add_attachment(f"{attached}.\n", filename="minutes.txt")
    raw = mail.as_bytes()
    for text in (subject, body, attached):
        assert text.encode() in raw  # so a store that kept it plain would show it
    return raw


def held_show(world: World, ref: str) -> str:
    shown = run_gatekeeper("held", "show", ref, db=world.database_url)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def item_page(world: World, ref: str) -> str:
    """The item page as a checker opens it, from a web app in this process."""
    app = create_app(Settings(internal_domains=("gatekeeper.example",)), world.engine, sweep=False)
    with TestClient(app, follow_redirects=False) as browser:
        form = {"email": world.checker.email, "password": PASSWORD, "next": "/"}
        assert post_form(browser, "/login", form, page="/login").status_code == 303
        page = browser.get(f"/items/{ref}")
        assert page.status_code == 200, page.text[:500]
        return page.text


def without_trace(content: bytes) -> bytes:
    """A delivered message as written: the two trace headers (four lines) taken off."""
    return b"\n".join(content.split(b"\n")[4:])


def keys(world: World, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gatekeeper("keys", *args, db=world.database_url, env=env or None)


def sealing_key(world: World) -> str:
    status = keys(world, "status")
    assert status.returncode == 0, status.stderr
    found = re.search(r"^(\S+) \(seals\)", status.stdout, re.M)
    assert found, status.stdout
    return found.group(1)


def values_per_key(world: World) -> dict[str, int]:
    """`keys status`: the stored values under each key, and `not sealed` ones."""
    status = keys(world, "status").stdout
    counts = {}
    for line in status.splitlines()[2:]:
        found = re.match(r"^(not sealed|\S+).*?((?:\s+\d+){3})$", line)
        if found:
            counts[found.group(1)] = sum(int(n) for n in found.group(2).split())
    return counts


# -- the tests ------------------------------------------------------------------------------


def test_the_database_dump_contains_no_held_message_plaintext(
    world: World, relay: RelayProcess, sink: SmtpSink
) -> None:
    s = world.scenario
    held_secrets = secrets_for("held")
    held_raw = message(world, s.lookalike_to, *held_secrets)
    code, reply = relay.submit(world.sender, held_raw)
    assert code == 250 and "held for a second check" in reply, reply
    held_ref = ref_of(reply)
    sent_secrets = secrets_for("released")
    sent_raw = message(world, s.release_to, *sent_secrets)
    code, reply = relay.submit(world.sender, sent_raw)
    assert code == 250 and "queued for delivery" in reply, reply
    sent_ref = ref_of(reply)
    # The held notice quotes the subject: once it has arrived, it is in the store too.
    wait_for(
        lambda: [m for m in sink.to(world.sender.email) if held_ref in m.content.decode()],
        "the held notice",
    )
    wait_for(lambda: [m for m in sink.to(s.release_to) if m.decision_ref == sent_ref], "delivery")

    stored = database_bytes(world)
    assert held_ref.encode() in stored and sent_ref.encode() in stored  # the dump is readable
    leaked = [t for t in (*held_secrets, *sent_secrets) if t.encode() in stored]
    assert leaked == []

    # Staff see what they always saw: the subject in the queue, the message on the item page.
    subject, body, attached = held_secrets
    assert f"subject: {subject}" in held_show(world, held_ref)
    page = item_page(world, held_ref)
    assert subject in page and body in page and attached in page
    approved = run_gatekeeper(
        "held", "approve", held_ref, "--as", world.checker.email, db=world.database_url
    )
    assert approved.returncode == 0, approved.stderr
    [arrived] = wait_for(
        lambda: [m for m in sink.to(s.lookalike_to) if m.decision_ref == held_ref], "approval"
    )
    assert without_trace(arrived.content) == held_raw.replace(b"\r\n", b"\n") + b"\n"


def store_as_before_encryption(world: World, subject: str, raw: bytes) -> str:
    """A held item with its notice, written as Gatekeeper wrote them before encryption at rest."""
    ref = new_ref()
    now = dt.datetime.now(dt.UTC)
    with world.engine.begin() as conn:
        item_id = conn.execute(
            insert(Item).returning(Item.id),
            {
                "ref": ref,
                "channel": "email",
                "sender": world.sender.email,
                "subject": subject,
                "envelope": {"mail_from": world.sender.email, "rcpt_to": ["x@example.net"]},
                "recipients": [],
                "case_ids": [],
                "data_subjects": [],
                "findings": [],
                "verdict": "hold",
                "state": "held",
                "monitor_only": False,
                "size": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "received_at": now,
                "decided_at": now,
            },
        ).scalar_one()
        conn.execute(insert(ItemContent), {"item_id": item_id, "raw": raw})
        notice = f"Subject: Held for a second check: {subject} (ref {ref})\r\n\r\nHeld.\r\n"
        conn.execute(
            insert(OutboundMessage),
            {
                "item_id": item_id,
                "kind": "notice",
                "mail_from": "",
                "recipient": world.sender.email,
                "raw": notice.encode(),
                "state": "delivered",
                "expires_at": now,
            },
        )
    return ref


def test_content_stored_before_encryption_is_sealed_by_keys_reseal(
    world: World, relay: RelayProcess
) -> None:
    secrets = secrets_for("legacy")
    subject, body, attached = secrets
    ref = store_as_before_encryption(world, subject, message(world, "x@example.net", *secrets))
    assert subject.encode() in database_bytes(world)  # as an older version left it
    assert values_per_key(world)["not sealed"] == 3  # subject, content, notice

    resealed = keys(world, "reseal")
    assert resealed.returncode == 0, resealed.stderr
    assert "resealed 1 subjects, 1 contents, 1 notices under" in resealed.stdout

    assert values_per_key(world)["not sealed"] == 0
    stored = database_bytes(world)
    assert ref.encode() in stored
    assert [t for t in secrets if t.encode() in stored] == []
    assert f"subject: {subject}" in held_show(world, ref)
    page = item_page(world, ref)
    assert body in page and attached in page


def test_rotation_reseals_everything_and_the_running_relay_follows(
    world: World, relay: RelayProcess, sink: SmtpSink
) -> None:
    s = world.scenario
    before_secrets = secrets_for("before rotation")
    code, reply = relay.submit(world.sender, message(world, s.lookalike_to, *before_secrets))
    assert code == 250 and "held" in reply, reply
    before_ref = ref_of(reply)
    old = sealing_key(world)

    rotated = keys(world, "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = sealing_key(world)
    assert new != old and f"added key {new}" in rotated.stdout
    counts = values_per_key(world)
    assert counts[old] == 0 and counts["not sealed"] == 0 and counts[new] > 0

    # The relay reads the rewritten keyring by itself: it seals with the new key...
    after_secrets = secrets_for("after rotation")
    after_raw = message(world, s.lookalike_to, *after_secrets)
    code, reply = relay.submit(world.sender, after_raw)
    assert code == 250 and "held" in reply, reply
    after_ref = ref_of(reply)
    assert values_per_key(world)[old] == 0
    # ...and the old key, sealing nothing now, leaves the keyring.
    retired = keys(world, "retire", old)
    assert retired.returncode == 0, retired.stderr
    assert old not in keys(world, "status").stdout

    assert f"subject: {before_secrets[0]}" in held_show(world, before_ref)
    approved = run_gatekeeper(
        "held", "approve", after_ref, "--as", world.checker.email, db=world.database_url
    )
    assert approved.returncode == 0, approved.stderr
    [arrived] = wait_for(
        lambda: [m for m in sink.to(s.lookalike_to) if m.decision_ref == after_ref], "approval"
    )
    assert without_trace(arrived.content) == after_raw.replace(b"\r\n", b"\n") + b"\n"


def test_a_key_that_still_seals_values_cannot_be_retired(world: World, relay: RelayProcess) -> None:
    old = sealing_key(world)
    added = keys(world, "rotate", "--no-reseal")
    assert added.returncode == 0, added.stderr
    assert "then run `gatekeeper keys reseal`" in added.stdout

    refused = keys(world, "retire", old)
    assert refused.returncode == 1
    assert f"stored values are sealed under {old}: `gatekeeper keys reseal` first" in refused.stderr
    assert keys(world, "reseal").returncode == 0
    assert keys(world, "retire", old).returncode == 0


def test_a_process_without_the_keyring_says_which_key_it_lacks(
    world: World, relay: RelayProcess, tmp_path: Path
) -> None:
    raw = message(world, world.scenario.lookalike_to, *secrets_for("elsewhere"))
    code, reply = relay.submit(world.sender, raw)
    assert code == 250, reply
    ref = ref_of(reply)
    other = tmp_path / "other.keys"
    assert keys(world, "generate", str(other)).returncode == 0
    elsewhere = run_gatekeeper(
        "held",
        "show",
        ref,
        db=world.database_url,
        env={"GATEKEEPER_QUARANTINE_KEY_FILE": str(other)},
    )
    assert elsewhere.returncode == 3
    assert f"sealed under key {sealing_key(world)}, which this keyring lacks" in elsewhere.stderr
    assert "Traceback" not in elsewhere.stderr

    # The item page, from a web app given the other keyring: the reason, not a crash.
    app = create_app(
        Settings(internal_domains=("gatekeeper.example",), quarantine_key_file=str(other)),
        world.engine,
        sweep=False,
    )
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as browser:
        form = {"email": world.checker.email, "password": PASSWORD, "next": "/"}
        assert post_form(browser, "/login", form, page="/login").status_code == 303
        page = browser.get(f"/items/{ref}")
    assert page.status_code == 503, page.text[:500]
    assert "Sealed content cannot be opened here" in page.text
    assert f"sealed under key {sealing_key(world)}, which this keyring lacks" in page.text
    assert world.checker.name in page.text and "Sign out" in page.text  # still signed in

    both = run_gatekeeper(
        "held",
        "list",
        db=world.database_url,
        env={
            "GATEKEEPER_QUARANTINE_KEY_FILE": str(other),
            "GATEKEEPER_QUARANTINE_KEYS": other.read_text(),
        },
    )
    assert both.returncode == 3
    assert "set quarantine_key_file or quarantine_keys, not both" in both.stderr
