"""`agentcage domain list|add|rm CAGE [DOMAIN]`: applied live, the agent keeps running."""

from __future__ import annotations

import json

import click

from agentcage.cage import domains
from agentcage.cage.lifecycle import Cages


@click.group()
def domain() -> None:
    """Change which hosts a cage may reach, without restarting its agent."""


@domain.command("list")
@click.argument("cage")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools (docs/operations.md).")
def list_(cage: str, as_json: bool) -> None:
    """CAGE's domain list and whether it is an allowlist or a blocklist."""
    mode, entries = domains.entries(Cages(), cage)
    if as_json:
        click.echo(json.dumps({"mode": mode, "entries": list(entries)}, indent=2))
        return
    click.echo(f"# {mode}")
    for entry in entries:
        click.echo(entry)


@domain.command()
@click.argument("cage")
@click.argument("entry")
def add(cage: str, entry: str) -> None:
    """Add ENTRY (a domain, matching its subdomains too, an IP or a CIDR block)."""
    config, changed = domains.change(Cages(), cage, entry, add=True)
    verb = "added to" if changed else "already in"
    click.echo(f"{entry} {verb} the {config.domains.mode} of {cage}")


@domain.command()
@click.argument("cage")
@click.argument("entry")
def rm(cage: str, entry: str) -> None:
    """Remove ENTRY."""
    config, changed = domains.change(Cages(), cage, entry, add=False)
    verb = "removed from" if changed else "was not in"
    click.echo(f"{entry} {verb} the {config.domains.mode} of {cage}")
