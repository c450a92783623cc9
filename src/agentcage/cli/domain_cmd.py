"""`agentcage domain list|add|rm CAGE [DOMAIN]`: applied live, the agent keeps running;
`agentcage domain suggest NAME`: what a learning cage needs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import click

from agentcage.audit.reading import AuditLogs
from agentcage.audit.selection import TIME_HELP, parse_when, record_time
from agentcage.audit.suggestions import Suggestion, suggest
from agentcage.cage import domains
from agentcage.cage.layout import is_self_test
from agentcage.cage.lifecycle import Cages
from agentcage.cage.remote_hosts import cages_for
from agentcage.cli.audit_cmd import log_paths, log_targets
from agentcage.config.schema import CageConfig
from agentcage.policy.canonical_hosts import BadHost, HostSet, canonical_host


@click.group()
def domain() -> None:
    """Change which hosts a cage may reach, without restarting its agent."""


@domain.command("list")
@click.argument("cage")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools (docs/operations.md).")
def list_(cage: str, as_json: bool) -> None:
    """CAGE's domain list and whether it is an allowlist or a blocklist."""
    mode, entries = domains.entries(cages_for(cage), cage)
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
    _change(cage, entry, add=True, verbs=("added to", "already in"))


@domain.command()
@click.argument("cage")
@click.argument("entry")
def rm(cage: str, entry: str) -> None:
    """Remove ENTRY."""
    _change(cage, entry, add=False, verbs=("removed from", "was not in"))


def _change(cage: str, entry: str, *, add: bool, verbs: tuple[str, str]) -> None:
    """`verbs`: what is said when the list changed, and when it already was so."""
    config, changed = domains.change(cages_for(cage), cage, entry, add=add)
    verb = verbs[0] if changed else verbs[1]
    click.echo(f"{entry} {verb} the {config.domains.mode} of {cage}")


@domain.command("suggest")
@log_targets
@click.option("--since", metavar="TIME", help=f"Only records from TIME on: {TIME_HELP}.")
@click.option(
    "--by-domain",
    is_flag=True,
    help="One entry per registrable domain (it matches every name below it) instead of "
    "each name seen.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the suggestion as JSON for tools.")
def suggest_(
    targets: tuple[str, ...], as_files: bool, since: str | None, by_domain: bool, as_json: bool
) -> None:
    """The domain list the traffic of learning cage NAME needs, ready to paste.

    Reads the cage's proxy and DNS audit logs (rotated files too, so a stopped cage
    works) for the lines learn mode (`domains.enforcement: learn`) let through as
    `learn: would-block`, and prints a `domains:` section: the current entries, then
    the names seen, grouped by registrable domain (Public Suffix List), and
    `enforcement: enforce`. Names the current list no longer refuses are left out.
    """
    if not as_files and len(targets) != 1:
        raise click.UsageError("give one cage NAME (or log files with --file)")
    start = parse_when(since, datetime.now(UTC)) if since else None
    config = None if as_files else Cages().store.load_config(targets[0])
    logs = AuditLogs(log_paths(targets, as_files))
    try:
        records = (
            line.record
            for line in logs.existing()
            if not is_self_test(line.record) and _since(line.record, start)
        )
        groups = suggest(records, _no_longer_refused(config))
    finally:
        logs.close()
    shown = Suggestion(groups, by_domain=by_domain)
    if config is not None:
        shown = Suggestion(
            groups,
            mode=config.domains.mode,
            entries=tuple(config.domains.entries),
            cage=config.name,
            by_domain=by_domain,
        )
    if as_json:
        click.echo(json.dumps(shown.as_dict(), indent=2))
        return
    if not groups:
        click.echo(
            "no would-block lines: nothing the domain list refuses was used while "
            "learning (or learn mode was off)",
            err=True,
        )
    click.echo(shown.yaml(), nl=False)


def _since(record: dict[str, object], start: datetime | None) -> bool:
    if start is None:
        return True
    when = record_time(record)
    return when is not None and when >= start


def _no_longer_refused(config: CageConfig | None) -> Callable[[str], bool]:
    """Whether the cage's current list lets a name through (added since it was seen)."""
    if config is None:
        return lambda name: False
    hosts = HostSet(config.domains.entries)
    allowlist = config.domains.mode == "allowlist"

    def passes(name: str) -> bool:
        try:
            listed = canonical_host(name) in hosts
        except BadHost:
            return False
        return listed == allowlist

    return passes
