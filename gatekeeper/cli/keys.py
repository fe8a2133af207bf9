"""`gatekeeper keys`: the keyring that seals held content in the store."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import click

from gatekeeper.cli.context import AppContext, pass_app
from gatekeeper.quarantine import Keyring, Quarantine, QuarantineError, QuarantineKey, write_keyring

# How `keys status` names each sealed column.
_COLUMN_NAMES = {"items": "subjects", "contents": "contents", "queued": "notices"}


@click.group()
def keys() -> None:
    """The keyring that seals held content (bodies, attachments, subjects, notices) at rest."""


@keys.command("generate")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@pass_app
def keys_generate(app: AppContext, file: str | None) -> None:
    """Write a new keyring of one key to FILE (readable by its owner only).

    FILE defaults to the configured quarantine_key_file; an existing file is
    never overwritten. `-` prints the key as one `ID:KEY` entry instead, for
    the quarantine_keys setting. Back the keyring up apart from the database:
    without it, sealed content cannot be read.
    """
    if file == "-":
        click.echo(QuarantineKey.new().entry())
        return
    target = file or app.settings.quarantine_key_file
    if not target:
        raise click.UsageError("name the file (e.g. /etc/gatekeeper/quarantine.keys)")
    path = Path(target).expanduser()
    keyring = Keyring.generate()
    try:
        write_keyring(path, keyring)
    except FileExistsError:
        raise click.ClickException(f"{path} exists: it is never overwritten") from None
    click.echo(f"wrote {path} with key {keyring.primary.key_id}")
    if not app.settings.quarantine_key_file:
        click.echo(f"set quarantine_key_file = {str(path)!r} on every node that uses the store")


@keys.command("status")
@pass_app
def keys_status(app: AppContext) -> None:
    """Where the keys come from, and how many stored values each key sealed."""
    from gatekeeper.store.sealed import rows_per_key

    quarantine = Quarantine.for_store(app.settings, app.engine)
    try:
        keyring: Keyring | None = quarantine.keyring()
        click.echo(f"keyring: {quarantine.describe()}")
    except QuarantineError as exc:
        keyring = None
        click.echo(f"keyring: none usable here: {exc}")
    with app.engine.connect() as conn:
        counts = rows_per_key(conn)
    ids = list(keyring.ids) if keyring else []
    used = {key for per in counts.values() for key in per if key is not None}
    rows: list[tuple[str, str | None]] = [
        (f"{key_id} (seals)" if keyring and key_id == keyring.primary.key_id else key_id, key_id)
        for key_id in ids
    ]
    rows += [(f"{key_id} (not in this keyring)", key_id) for key_id in sorted(used - set(ids))]
    rows.append(("not sealed", None))
    _table(rows, counts)
    missing = sorted(used - set(ids))
    if missing:
        click.echo(
            f"values sealed under {', '.join(missing)} cannot be opened with this keyring",
            err=True,
        )
    if keyring is not None:
        waiting = sum(
            n for per in counts.values() for key, n in per.items() if key != keyring.primary.key_id
        )
        if waiting:
            click.echo(f"{waiting} values are not under the sealing key: `gatekeeper keys reseal`")


def _table(rows: list[tuple[str, str | None]], counts: dict[str, Counter[str | None]]) -> None:
    names = [_COLUMN_NAMES[c] for c in counts]
    width = max(len(label) for label, _ in rows)
    click.echo(f"{'key':<{width}}  " + "  ".join(f"{n:>9}" for n in names))
    for label, key_id in rows:
        figures = "  ".join(f"{counts[c][key_id]:>9}" for c in counts)
        click.echo(f"{label:<{width}}  {figures}")


@keys.command("rotate")
@click.option(
    "--no-reseal",
    is_flag=True,
    help="Only add the key; `gatekeeper keys reseal` later (after every node has the keyring).",
)
@pass_app
def keys_rotate(app: AppContext, no_reseal: bool) -> None:
    """Add a new key that seals from now on, then reseal every stored value with it.

    The older keys stay in the keyring (they still open anything sealed under
    them until it is resealed); `gatekeeper keys retire ID` removes one that
    seals nothing any more. A relay or web app on this machine reads the
    changed keyring file by itself; a node with its own copy needs this one.
    """
    quarantine = Quarantine.for_store(app.settings, app.engine)
    current = quarantine.prepare()
    path = _writable(quarantine)
    rotated = current.with_new_primary()
    write_keyring(path, rotated, replace=True)
    quarantine.forget()
    click.echo(
        f"{path}: added key {rotated.primary.key_id}, which seals from now on"
        f" (keys: {', '.join(rotated.ids)})"
    )
    if no_reseal:
        click.echo("copy the keyring to every node, then run `gatekeeper keys reseal`")
        return
    _reseal(app, quarantine)


@keys.command("reseal")
@pass_app
def keys_reseal(app: AppContext) -> None:
    """Seal every stored value that is not under the sealing key with it.

    That is values sealed under older keys, and content stored before
    encryption at rest (run it once after upgrading). Safe to run again, and
    while the relay and the web app run.
    """
    _reseal(app, Quarantine.for_store(app.settings, app.engine))


def _reseal(app: AppContext, quarantine: Quarantine) -> None:
    from gatekeeper.cli.progress import count_progress
    from gatekeeper.store.sealed import count_needing, reseal

    primary = quarantine.prepare().primary.key_id
    started = time.perf_counter()
    total = count_needing(app.engine, primary)
    with count_progress(total, "resealing", "values") as advance:
        done = reseal(app.engine, quarantine, progress=advance)
    figures = ", ".join(f"{n} {_COLUMN_NAMES[c]}" for c, n in done.items())
    seconds = time.perf_counter() - started
    click.echo(f"resealed {figures} under {primary} in {seconds:.1f} s")
    older = [k for k in quarantine.keyring().ids if k != primary]
    if older and sum(done.values()) == total:
        click.echo(
            f"older keys ({', '.join(older)}) seal nothing now: once every node has this"
            " keyring, `gatekeeper keys retire ID` removes one"
        )


@keys.command("retire")
@click.argument("key_id")
@pass_app
def keys_retire(app: AppContext, key_id: str) -> None:
    """Remove KEY_ID from the keyring; refused while any stored value is sealed under it."""
    from gatekeeper.store.sealed import rows_per_key

    quarantine = Quarantine.for_store(app.settings, app.engine)
    path = _writable(quarantine)
    retired = quarantine.keyring().without(key_id)
    with app.engine.connect() as conn:
        still = sum(per[key_id] for per in rows_per_key(conn).values())
    if still:
        raise click.ClickException(
            f"{still} stored values are sealed under {key_id}: `gatekeeper keys reseal` first"
        )
    write_keyring(path, retired, replace=True)
    quarantine.forget()
    click.echo(f"{path}: retired key {key_id} (keys: {', '.join(retired.ids)})")


def _writable(quarantine: Quarantine) -> Path:
    path = quarantine.path
    if path is None:
        click.echo(
            "the keyring is the quarantine_keys setting, which this command cannot change:"
            " put a new entry (`gatekeeper keys generate -`) first in it on every node,"
            " restart them, then run `gatekeeper keys reseal`",
            err=True,
        )
        sys.exit(1)
    return path
