"""`gatekeeper keys` and where the keys come from, as an administrator meets them.

Items are sealed here in-process with the same code the relay uses
(`store/sealed.py`); every check is the command line a person would run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update

from gatekeeper.config import Settings
from gatekeeper.quarantine import Keyring, Quarantine, QuarantineError, read_keyring
from gatekeeper.smtp.intake import new_ref
from gatekeeper.store.correspondence import Item, ItemContent
from gatekeeper.store.keyrings import GeneratedKeyring
from gatekeeper.store.sealed import open_content, sealed_content, sealed_subject
from tests.conftest import run_gatekeeper

RAW = b"Subject: Kinship review\r\n\r\nThe heron report is attached.\r\n"


def hold(engine: Engine, quarantine: Quarantine, subject: str, raw: bytes = RAW) -> str:
    """A held item stored as the relay stores one: subject and bytes sealed."""
    quarantine.prepare()  # as the relay does at start, before any transaction
    ref = new_ref()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        item_id = conn.execute(
            insert(Item).returning(Item.id),
            {
                "ref": ref,
                "channel": "email",
                "sender": "a.jones@gatekeeper.example",
                **sealed_subject(quarantine, ref, subject),
                "envelope": {"mail_from": "a.jones@gatekeeper.example", "rcpt_to": ["x@ex.net"]},
                "recipients": [],
                "case_ids": [],
                "data_subjects": [],
                "findings": [],
                "state": "held",
                "monitor_only": False,
                "size": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "received_at": now,
                "decided_at": now,
            },
        ).scalar_one()
        conn.execute(insert(ItemContent), sealed_content(quarantine, item_id, raw))
    return ref


def test_generate_writes_a_keyring_only_its_owner_reads_and_never_overwrites(
    tmp_path: Path,
) -> None:
    path = tmp_path / "etc" / "quarantine.keys"
    made = run_gatekeeper("keys", "generate", str(path))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keyring = read_keyring(path)
    assert f"with key {keyring.primary.key_id}" in made.stdout
    assert "set quarantine_key_file" in made.stdout

    again = run_gatekeeper("keys", "generate", str(path))
    assert again.returncode == 1 and "is never overwritten" in again.stderr
    assert read_keyring(path).ids == keyring.ids


def test_keys_from_the_environment_open_what_they_sealed(engine: Engine, database_url: str) -> None:
    entry = run_gatekeeper("keys", "generate", "-").stdout.strip()
    ref = hold(engine, Quarantine(engine, keys=entry), "Kinship review for the Heron family")

    shown = run_gatekeeper(
        "held", "show", ref, db=database_url, env={"GATEKEEPER_QUARANTINE_KEYS": entry}
    )
    assert shown.returncode == 0, shown.stderr
    assert "subject: Kinship review for the Heron family" in shown.stdout

    without = run_gatekeeper("held", "show", ref, db=database_url)
    assert without.returncode == 3
    assert "lacks" in without.stderr and "Traceback" not in without.stderr

    rotate = run_gatekeeper(
        "keys", "rotate", db=database_url, env={"GATEKEEPER_QUARANTINE_KEYS": entry}
    )
    assert rotate.returncode == 1
    assert "`gatekeeper keys generate -`" in rotate.stderr and "keys reseal" in rotate.stderr


def test_a_malformed_keyring_is_refused_naming_the_file_and_line(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.keys"
    good = Keyring.generate().primary.entry()
    path.write_text(f"# ours\n{good}\nsecond:not-base64\n")
    path.chmod(0o600)
    listed = run_gatekeeper(
        "held", "list", db=database_url, env={"GATEKEEPER_QUARANTINE_KEY_FILE": str(path)}
    )
    assert listed.returncode == 3
    assert f"{path}, line 3: key second is not 32 bytes of base64" in listed.stderr


def test_content_altered_or_moved_to_another_row_does_not_open(engine: Engine) -> None:
    quarantine = Quarantine(engine, keys=Keyring.generate().primary.entry())
    first, second = hold(engine, quarantine, "One"), hold(engine, quarantine, "Two", b"other")
    with engine.begin() as conn:
        rows = {
            r.ref: r
            for r in conn.execute(
                select(Item.ref, Item.id, ItemContent.key_id, ItemContent.raw).join(
                    ItemContent, ItemContent.item_id == Item.id
                )
            )
        }
    one, two = rows[first], rows[second]
    assert open_content(quarantine, one.id, one.key_id, one.raw) == RAW
    with pytest.raises(QuarantineError, match="moved from another row"):
        open_content(quarantine, two.id, one.key_id, one.raw)  # item one's bytes, on item two
    flipped = bytes(one.raw[:-1]) + bytes([one.raw[-1] ^ 1])
    with pytest.raises(QuarantineError, match="altered in the store"):
        open_content(quarantine, one.id, one.key_id, flipped)


def test_every_process_finds_the_generated_keyring_and_a_machine_without_it_says_so(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    # Generated by a process with its own data directory (the relay's, say)...
    quarantine = Quarantine.for_store(Settings(), engine)
    ref = hold(engine, quarantine, "Kinship review")
    with engine.connect() as conn:
        generated = Path(conn.execute(select(GeneratedKeyring.path)).scalar_one())
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600
    # ...found by a command run with another one.
    elsewhere = {"GATEKEEPER_DATA_DIR": str(tmp_path / "another-user")}
    shown = run_gatekeeper("held", "show", ref, db=database_url, env=elsewhere)
    assert shown.returncode == 0 and "subject: Kinship review" in shown.stdout, shown.stderr
    status = run_gatekeeper("keys", "status", db=database_url, env=elsewhere)
    assert f"keyring: {generated}, generated for this store" in status.stdout

    shutil.move(generated, tmp_path / "moved.keys")  # as on a machine that does not have it
    missing = run_gatekeeper("held", "show", ref, db=database_url, env=elsewhere)
    assert missing.returncode == 3
    assert f"generated at {generated}" in missing.stderr
    assert "copy it here and set quarantine_key_file" in missing.stderr


def test_reseal_seals_rows_from_before_encryption(engine: Engine, database_url: str) -> None:
    quarantine = Quarantine.for_store(Settings(), engine)
    ref = hold(engine, quarantine, "Kinship review")
    with engine.begin() as conn:  # as the row was before encryption at rest
        conn.execute(
            update(Item)
            .where(Item.ref == ref)
            .values(subject="Kinship review", sealed_subject=None, subject_key_id=None)
        )
    upgraded = run_gatekeeper("db", "upgrade", db=database_url)
    assert "1 stored values are not sealed yet: run `gatekeeper keys reseal`" in upgraded.stdout
    resealed = run_gatekeeper("keys", "reseal", db=database_url)
    assert resealed.returncode == 0, resealed.stderr
    assert "resealed 1 subjects, 0 contents, 0 notices" in resealed.stdout
    with engine.connect() as conn:
        row = conn.execute(select(Item.subject, Item.subject_key_id).where(Item.ref == ref)).one()
    assert row.subject == "" and row.subject_key_id is not None
    again = run_gatekeeper("keys", "reseal", db=database_url)
    assert "resealed 0 subjects, 0 contents, 0 notices" in again.stdout
