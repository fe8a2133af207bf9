"""`gatekeeper policy`: validate and read the policy governance reviews."""

from __future__ import annotations

import click

from gatekeeper.checks.registry import registered_checks
from gatekeeper.cli.context import AppContext, pass_app
from gatekeeper.policy import PolicyError, load_policy


@click.group()
def policy() -> None:
    """The policy: what each check's finding means on each channel."""


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def policy_check(file: str) -> None:
    """Validate a site policy FILE (as an override of the default policy).

    Every mistake is reported as FILE:LINE: what is wrong; the exit status
    is 1 when there is any.
    """
    try:
        loaded = load_policy(file)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise SystemExit(1) from None
    mode = " (monitor-only)" if loaded.monitor_only else ""
    click.echo(f"{file}: valid; {len(loaded.checks)} checks{mode}")


@policy.command("show")
@pass_app
def policy_show(app: AppContext) -> None:
    """Show the policy in force: each check, its severity per channel, and what it means."""
    loaded = load_policy(app.settings.policy_file or None)
    specs = registered_checks()
    click.echo(f"policy from: {', '.join(loaded.sources)}")
    if loaded.monitor_only:
        click.echo(
            click.style(
                "MONITOR-ONLY: everything is released (forced checks still act)", fg="yellow"
            )
        )
    for name, rule in loaded.checks.items():
        status = "" if rule.enabled else "  (disabled)"
        forced = "  forced" if rule.forced else ""
        severities = "  ".join(f"{c}: {s.value}" for c, s in sorted(rule.severity.items()))
        click.echo(click.style(f"{name}{status}", bold=True) + f"  [{severities}]{forced}")
        if name in specs:
            click.echo(f"    {specs[name].description}")
        for variant, levels in rule.variants.items():
            shown = "  ".join(f"{c}: {s.value}" for c, s in sorted(levels.items()))
            click.echo(f"    when {variant}: {shown}")
        for key, value in rule.settings.items():
            click.echo(f"    {key} = {value}")
