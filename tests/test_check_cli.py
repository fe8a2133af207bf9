"""`gatekeeper check email` exactly as shared/spec/check-cli.md says, run as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases, import_staff
from tests.conftest import CORPORA, run_gatekeeper
from tests.eml import eml
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

ENV = {"GATEKEEPER_INTERNAL_DOMAINS": "gatekeeper.example"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('check') / 'gk.db'}"
    engine = open_store(url)
    import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)])
    import_staff(engine, [json.dumps(s) for s in STAFF])
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def drafts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("drafts")
    messages = {
        "clean.eml": eml(
            to=["jane.smith@example.net"],
            subject="853206",
            body="Dear Jane,\n\nSee you on Tuesday.\n\nAlice",
        ),
        "lookalike.eml": eml(
            to=["m.smith77@example.co"],
            subject="853206 hearing",
            body="Dear Mark,\n\nThe hearing about Tom Smith is on 3 April.",
        ),
        "leak.eml": eml(
            to=["m.smith77@example.com"],
            subject="853206",
            body="Dear Mark,\n\nJane has moved to 14 Mill Lane, LS6 2AB.",
        ),
    }
    paths = {}
    for name, raw in messages.items():
        paths[name] = folder / name
        paths[name].write_bytes(raw)
    return paths


def test_json_for_one_message_follows_the_contract(store: str, drafts: dict[str, Path]) -> None:
    result = run_gatekeeper(
        "check", "email", str(drafts["lookalike.eml"]), "--json", db=store, env=ENV
    )
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= {"verdict", "channel", "case_ids", "recipients", "findings", "data_subjects"}
    assert out["verdict"] == "hold" and out["channel"] == "email"
    assert out["case_ids"] == ["853206"]
    assert out["recipients"] == [
        {"address": "m.smith77@example.co", "kind": "to", "party_id": None, "case_id": None}
    ]
    finding = out["findings"][0]
    assert finding["check"] == "recipient_lookalike" and finding["severity"] == "hold"
    assert (
        finding["summary"]
        == "m.smith77@example.co looks like m.smith77@example.com (Mark Smith, case 853206) but is not it"
    )
    assert finding["evidence"]["expected"] == "m.smith77@example.com"
    assert set(out["data_subjects"]) >= {"853206-P1", "853206-P3"}


def test_exit_status_follows_the_verdict(store: str, drafts: dict[str, Path]) -> None:
    for name, status in (("clean.eml", 0), ("lookalike.eml", 1), ("leak.eml", 2)):
        assert (
            run_gatekeeper("check", "email", str(drafts[name]), db=store, env=ENV).returncode
            == status
        ), name


def test_several_files_give_json_lines_in_order_and_the_worst_status(
    store: str, drafts: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.eml"
    files = [drafts["clean.eml"], missing, drafts["leak.eml"], drafts["lookalike.eml"]]
    result = run_gatekeeper("check", "email", *map(str, files), "--json", db=store, env=ENV)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    assert [line["verdict"] for line in lines] == ["release", "error", "block", "hold"]
    assert "cannot read" in lines[1]["error"]
    assert result.returncode == 3  # the unreadable file is the most severe
    assert result.stderr.strip().startswith("gatekeeper: cannot read")


def test_human_output_names_the_finding_and_what_was_expected(
    store: str, drafts: dict[str, Path]
) -> None:
    result = run_gatekeeper("check", "email", str(drafts["leak.eml"]), db=store, env=ENV)
    assert result.stdout.startswith(f"{drafts['leak.eml']}: BLOCK (about case 853206)")
    assert (
        "block  confidential_address_leak: Jane Smith's confidential contact details"
        in result.stdout
    )


def test_sender_defaults_to_from_and_can_be_given(store: str, drafts: dict[str, Path]) -> None:
    result = run_gatekeeper(
        "check",
        "email",
        str(drafts["clean.eml"]),
        "--sender",
        "b.khan@gatekeeper.example",
        "--json",
        db=store,
        env=ENV,
    )
    assert result.returncode == 0


def test_a_missing_store_is_one_line_and_status_3(tmp_path: Path, drafts: dict[str, Path]) -> None:
    absent = tmp_path / "none.db"
    result = run_gatekeeper("check", "email", str(drafts["clean.eml"]), db=f"sqlite:///{absent}")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "no case record" in result.stderr
    assert not absent.exists(), "check must not create a store"


def test_check_changes_nothing_in_the_store(store: str, drafts: dict[str, Path]) -> None:
    path = Path(store.removeprefix("sqlite:///"))
    before = path.read_bytes()
    run_gatekeeper("check", "email", str(drafts["lookalike.eml"]), db=store, env=ENV)
    assert path.read_bytes() == before


@pytest.mark.timeout(600)
def test_every_corpus_message_gets_a_verdict_without_a_traceback(store: str) -> None:
    files = sorted(str(p) for p in (CORPORA / "mime").rglob("*") if p.suffix in {".eml", ".msg"})
    assert len(files) == 80
    result = run_gatekeeper("check", "email", *files, "--json", db=store, env=ENV)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == files
    assert {line["verdict"] for line in lines} <= {"release", "hold", "block"}
    broken = {Path(line["file"]).name: line for line in lines}
    held = broken["missing-boundaries.eml"]
    assert held["verdict"] == "hold"
    assert any(f["check"] == "unreadable_content" for f in held["findings"])
