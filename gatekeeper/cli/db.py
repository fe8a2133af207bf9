"""`gatekeeper db`: the store's schema."""

from __future__ import annotations

import click
from sqlalchemy import Engine

from gatekeeper.cli.context import AppContext, pass_app
from gatekeeper.store import open_store, upgrade


@click.group()
def db() -> None:
    """The store's schema: create it or bring it up to date."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Migrate the database to this version's schema (safe to run again)."""
    engine = open_store(app.settings.effective_database_url, migrate_empty=False)
    before, after = upgrade(engine)
    if before == after:
        click.echo(f"database already at schema {after}")
    else:
        click.echo(f"database migrated from {before or 'empty'} to schema {after}")
    _hint_unsealed(engine)


def _hint_unsealed(engine: Engine) -> None:
    """Content stored before encryption at rest stays plain until `keys reseal` seals it."""
    from gatekeeper.store.sealed import rows_per_key

    with engine.connect() as conn:
        plain = sum(per[None] for per in rows_per_key(conn).values())
    if plain:
        click.echo(f"{plain} stored values are not sealed yet: run `gatekeeper keys reseal`")
