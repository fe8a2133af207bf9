"""`gatekeeper demo`: a sample case record to try Gatekeeper on."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gatekeeper.cli.context import AppContext, pass_app
from gatekeeper.config import data_dir
from gatekeeper.sample import SampleRecord
from gatekeeper.store.importer import count_cases, import_cases, import_staff

DEMO_CASES = 300
DEMO_STAFF = 40
DEMO_PORT = 2525


@click.command()
@click.option("--cases", "case_count", default=DEMO_CASES, show_default=True,
              help="How many sample cases to generate.")  # fmt: skip
@click.option("--staff", "staff_count", default=DEMO_STAFF, show_default=True,
              help="How many sample staff to generate.")  # fmt: skip
@click.option("--seed", default=1, show_default=True, help="Same seed, same sample record.")
@click.option("--no-serve", is_flag=True, help="Only load the sample; start nothing.")
@click.option("--port", default=DEMO_PORT, show_default=True,
              help="The relay's port (sink, metrics, web pages, letters service, CUPS: the "
                   "next five).")  # fmt: skip
@pass_app
def demo(
    app: AppContext, *, case_count: int, staff_count: int, seed: int, no_serve: bool, port: int
) -> None:
    """Load a generated sample case record and staff, then run the relay, web pages and letters.

    Every name and address is invented, and every email domain is a reserved
    example domain. The sample files are written to the data directory too, so
    you can read the import format. Running it again changes nothing.

    Then (unless --no-serve) the relay starts on 127.0.0.1 with a self-signed
    certificate and two demo accounts, delivering to a local sink that files
    each message in the data directory; it prints where to point a mail client.
    The approval pages start beside it, with demo sign-ins for a checker, a
    sender and governance, and two held sample messages to check. So does the
    letters service; with CUPS installed, a private cupsd gets a queue whose
    printer files each printed letter in the data directory, and two sample
    letters are written to print (one held for a checker).
    """
    sample = SampleRecord(seed)
    folder = data_dir() / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    case_file = _write(folder / "cases.jsonl", sample.case_lines(case_count))
    staff_file = _write(folder / "staff.jsonl", sample.staff_lines(staff_count))
    engine = app.engine
    with case_file.open("rb") as lines:
        click.echo(import_cases(engine, lines).summary())
    with staff_file.open("rb") as lines:
        click.echo(import_staff(engine, lines).summary())
    cases, parties = count_cases(engine)
    click.echo(f"store: {app.settings.effective_database_url} ({cases} cases, {parties} parties)")
    click.echo(f"sample files: {case_file} and {staff_file}")
    click.echo("try: gatekeeper cases show 100000")
    if not no_serve:
        from gatekeeper.quarantine import Quarantine
        from gatekeeper.smtp.demo import serve_demo

        quarantine = Quarantine.for_store(app.settings, engine)
        quarantine.prepare()
        click.echo(f"held content is sealed in the store (keyring: {quarantine.describe()})")

        staff = [json.loads(line) for line in staff_file.read_text("utf-8").splitlines()]
        serve_demo(app.settings, engine, folder, staff, port)


def _write(path: Path, lines: object) -> Path:
    assert hasattr(lines, "__iter__")
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path
