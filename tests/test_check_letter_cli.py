"""`gatekeeper check letter` exactly as shared/spec/check-cli.md says, run as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases, import_staff
from tests.conftest import run_gatekeeper
from tests.letters import MARK, letter_pdf
from tests.mailfiles import truncated_pdf
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

ENV = {"GATEKEEPER_INTERNAL_DOMAINS": "gatekeeper.example"}
SENDER = ("--sender", "a.jones@gatekeeper.example")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('check') / 'gk.db'}"
    engine = open_store(url)
    import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)])
    import_staff(engine, [json.dumps(s) for s in STAFF])
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def letters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("letters")
    made = {
        "clean.pdf": letter_pdf(MARK),
        "moved.pdf": letter_pdf(("Mr Mark Smith", "27 Elm Street", "York YO1 7HH")),
        "leak.pdf": letter_pdf(MARK, "Re: 853206\n\nJane has moved to 14 Mill Lane, LS6 2AB."),
        "corrupt.pdf": truncated_pdf(),
    }
    paths = {}
    for name, data in made.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


def test_json_for_one_letter_follows_the_contract(store: str, letters: dict[str, Path]) -> None:
    result = run_gatekeeper(
        "check", "letter", str(letters["moved.pdf"]), *SENDER, "--json", db=store, env=ENV
    )
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= {"verdict", "channel", "case_ids", "recipients", "findings", "data_subjects"}
    assert (out["verdict"], out["channel"], out["case_ids"]) == ("hold", "post", ["853206"])
    assert out["recipients"] == [
        {"address": "Mr Mark Smith, 27 Elm Street, York YO1 7HH", "kind": "postal",
         "party_id": None, "case_id": None}
    ]  # fmt: skip
    finding = out["findings"][0]
    assert (finding["check"], finding["severity"]) == ("postal_address_mismatch", "hold")
    assert finding["summary"].endswith("the record has 3 Oak Road, Bradford BD1 4QQ for Mark Smith")
    assert finding["evidence"]["expected"] == ["3 Oak Road, Bradford BD1 4QQ (Mark Smith)"]


def test_exit_status_follows_the_verdict(store: str, letters: dict[str, Path]) -> None:
    for name, status in (("clean.pdf", 0), ("moved.pdf", 1), ("leak.pdf", 2), ("corrupt.pdf", 1)):
        result = run_gatekeeper("check", "letter", str(letters[name]), *SENDER, db=store, env=ENV)
        assert result.returncode == status, (name, result.stdout, result.stderr)


def test_several_letters_give_json_lines_in_order_and_the_worst_status(
    store: str, letters: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pdf"
    files = [letters["clean.pdf"], missing, letters["leak.pdf"], letters["corrupt.pdf"]]
    result = run_gatekeeper(
        "check", "letter", *map(str, files), *SENDER, "--json", db=store, env=ENV
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    assert [line["verdict"] for line in lines] == ["release", "error", "block", "hold"]
    assert result.returncode == 3
    assert result.stderr.strip().startswith("gatekeeper: cannot read")


def test_human_output_names_the_finding_and_what_was_expected(
    store: str, letters: dict[str, Path]
) -> None:
    result = run_gatekeeper(
        "check", "letter", str(letters["moved.pdf"]), *SENDER, db=store, env=ENV
    )
    assert result.stdout.startswith(f"{letters['moved.pdf']}: HOLD (about case 853206)")
    assert (
        "hold   postal_address_mismatch: the letter is addressed to Mr Mark Smith" in result.stdout
    )


def test_the_sender_must_be_given(store: str, letters: dict[str, Path]) -> None:
    result = run_gatekeeper("check", "letter", str(letters["clean.pdf"]), db=store, env=ENV)
    assert result.returncode != 0 and "--sender" in result.stderr


def test_a_missing_store_is_one_line_and_status_3(tmp_path: Path, letters: dict[str, Path]) -> None:
    absent = tmp_path / "none.db"
    result = run_gatekeeper(
        "check", "letter", str(letters["clean.pdf"]), *SENDER, db=f"sqlite:///{absent}"
    )
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "no case record" in result.stderr
    assert not absent.exists()


def test_check_changes_nothing_in_the_store(store: str, letters: dict[str, Path]) -> None:
    path = Path(store.removeprefix("sqlite:///"))
    before = path.read_bytes()
    run_gatekeeper("check", "letter", str(letters["moved.pdf"]), *SENDER, db=store, env=ENV)
    assert path.read_bytes() == before
