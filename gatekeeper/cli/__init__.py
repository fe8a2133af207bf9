"""The `gatekeeper` command: one entry point, a sub-command per task."""

from __future__ import annotations

import sys
from typing import Any

import click

from gatekeeper import __version__
from gatekeeper.cli.audit import audit
from gatekeeper.cli.cases import cases
from gatekeeper.cli.check import check
from gatekeeper.cli.context import EXIT_UNUSABLE, AppContext
from gatekeeper.cli.db import db
from gatekeeper.cli.demo import demo
from gatekeeper.cli.held import held
from gatekeeper.cli.keys import keys
from gatekeeper.cli.policy import policy
from gatekeeper.cli.post import post
from gatekeeper.cli.register import register, retention
from gatekeeper.cli.relay import relay
from gatekeeper.cli.users import users
from gatekeeper.cli.web import web
from gatekeeper.config import ConfigError, load_settings
from gatekeeper.policy import PolicyError
from gatekeeper.store import StoreUnavailable

HELP = """Gatekeeper checks every outgoing email and letter against the case record
before it leaves: wrong recipients, look-alike addresses, another family's
content, leaked confidential addresses.

\b
Start here:
  gatekeeper demo                   a sample case record to try things on
  gatekeeper cases import FILE      load the case record (JSON Lines)
  gatekeeper cases show CASE_ID     who belongs to a case, and how to reach them
  gatekeeper check email FILE.eml   what Gatekeeper would do with an email

The store is SQLite in your data directory unless --db or
GATEKEEPER_DATABASE_URL names another (PostgreSQL in production).
"""


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gatekeeper")
@click.option(
    "--db",
    "database_url",
    metavar="URL",
    help="Database URL (default: $GATEKEEPER_DATABASE_URL, else SQLite in the data directory).",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Configuration file (TOML); default: $GATEKEEPER_CONFIG or the user config directory.",
)
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, config_file: str | None) -> None:
    settings = load_settings(config_file).with_overrides(database_url=database_url)
    ctx.obj = AppContext(settings)


for command in (check, cases, users, policy, db, demo, relay, held, web, register, retention):
    cli.add_command(command)
cli.add_command(post)
cli.add_command(audit)
cli.add_command(keys)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: configuration and store failures are one line, never a traceback."""
    try:
        return cli.main(args=argv, prog_name="gatekeeper", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except (StoreUnavailable, ConfigError, PolicyError) as exc:
        click.echo(f"gatekeeper: {exc}", err=True)
        sys.exit(EXIT_UNUSABLE)
