"""`agentcage secret set|list|rm CAGE NAME`: values come from a prompt or stdin, never argv."""

from __future__ import annotations

import json
import sys

import click

from agentcage.cage import podman_secrets, secrets_by_kind
from agentcage.cage.remote_hosts import cages_for


@click.group()
def secret() -> None:
    """Manage a cage's real secrets (Podman secrets, or a Kubernetes Secret; seen only by
    the proxy)."""


@secret.command("set")
@click.argument("cage")
@click.argument("name")
def set_(cage: str, name: str) -> None:
    """Store NAME for CAGE; reads the value from a hidden prompt, or stdin when piped."""
    podman_secrets.check_name(name)
    if sys.stdin.isatty():
        value = click.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    cages = cages_for(cage, progress=lambda line: click.echo(line, err=True))
    if name not in podman_secrets.expected(cages, cage):
        click.echo(f"warning: no secret_injection rule of {cage!r} uses {name}", err=True)
    restarted = secrets_by_kind.set_secret(cages, cage, name, value)
    click.echo(f"secret {name} set for {cage}; {_applied(cage, restarted)}")


def _applied(cage: str, restarted: list[str]) -> str:
    if restarted:
        return f"restarted {', '.join(restarted)} to apply it"
    return f"the proxy is not running; this applies at the next `agentcage cage start {cage}`"


@secret.command("list")
@click.argument("cage")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools (docs/operations.md).")
def list_(cage: str, as_json: bool) -> None:
    """Names of CAGE's secrets (never values), and which expected ones are missing."""
    cages = cages_for(cage)
    have = set(secrets_by_kind.secret_names(cages, cage))
    wanted = podman_secrets.expected(cages, cage)
    rows = [
        {"name": name, "set": name in have, "used": name in wanted}
        for name in sorted(have | set(wanted))
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "set" if row["set"] else "MISSING"
        note = "" if row["used"] else " (not used by any secret_injection rule)"
        click.echo(f"{row['name']:<32} {state}{note}")


@secret.command("rm")
@click.argument("cage")
@click.argument("name")
def rm(cage: str, name: str) -> None:
    """Delete CAGE's secret NAME."""
    cages = cages_for(cage, progress=lambda line: click.echo(line, err=True))
    restarted = secrets_by_kind.remove_secret(cages, cage, name)
    click.echo(f"secret {name} removed from {cage}; {_applied(cage, restarted)}")
