"""`agentcage policy replay`: what a candidate config would decide differently."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from agentcage.audit.reading import AuditLogs, named_logs
from agentcage.dns.rejudge import QueryRedecider
from agentcage.policy.replay import (
    Flip,
    Replayer,
    ReplayResult,
    RequestRedecider,
    load_candidate,
)


@click.group()
def policy() -> None:
    """Work with a cage's policy."""


@policy.command()
@click.option(
    "-c",
    "--config",
    "candidate",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The candidate config YAML whose policy re-decides the recorded traffic.",
)
@click.argument("logs", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--fail-on-new-blocks",
    is_flag=True,
    help="Exit 1 if any recorded request or query that was let through would be blocked.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def replay(
    candidate: Path, logs: tuple[Path, ...], fail_on_new_blocks: bool, as_json: bool
) -> None:
    """Re-decide the requests and DNS queries in audit LOGS with CANDIDATE's policy.

    Reads each LOG with its rotated files (LOG.1, LOG.2, ...), proxy and DNS logs
    alike, and prints what would flip: allow -> block, block -> allow, with counts.
    Only what a line holds is re-decided: host, port, method, path, DNS name and
    type. Bodies and headers are not in the log, so a request blocked for its body
    stays blocked; see docs/audit-log.md#policy-replay for what is replayed.
    """
    config = load_candidate(candidate)
    reader = AuditLogs(named_logs(logs))
    try:
        replayer = Replayer(
            {
                "http": RequestRedecider(config, candidate.resolve().parent),
                "dns": QueryRedecider(config),
            }
        )
        result = replayer.replay(line.record for line in reader.existing())
    finally:
        reader.close()
    if as_json:
        click.echo(json.dumps(_as_json(candidate, result), indent=2))
    else:
        _print(candidate, logs, result)
    if fail_on_new_blocks and result.new_blocks:
        click.echo(
            f"{result.new_blocks} recorded decisions that were let through would be blocked",
            err=True,
        )
        raise SystemExit(1)


def _what(record: dict[str, Any]) -> tuple[str, str]:
    if record.get("kind") == "dns":
        return f"dns/{record.get('qtype', '')}", str(record.get("qname", ""))
    return str(record.get("method", "")), str(record.get("host", ""))


def _print(candidate: Path, logs: tuple[Path, ...], result: ReplayResult) -> None:
    sources = ", ".join(str(path) for path in logs)
    total = result.replayed + sum(result.skipped.values())
    click.echo(f"replayed {result.replayed} of {total} lines from {sources} against {candidate}")
    if result.skipped:
        parts = ", ".join(f"{n} {why}" for why, n in result.skipped.most_common())
        click.echo(f"  not replayed: {parts}")
    if result.kept:
        kept = sorted(result.kept.items(), key=lambda item: (-item[1], item[0]))
        parts = ", ".join(f"{name or 'none'}: {n}" for name, n in kept)
        click.echo(
            "  kept as recorded (looser under the candidate, but decided on more than "
            f"the log holds): {parts}"
        )
    if not result.flips:
        click.echo("no decision would change")
        return
    for direction, count in sorted(result.directions.items()):
        click.echo(f"{direction}: {count}")
    groups: Counter[tuple[str, str, str, str, str]] = Counter()
    example: dict[tuple[str, str, str, str, str], Flip] = {}
    for flip in result.flips:
        what, name = _what(flip.record)
        key = (flip.direction, what, name, flip.inspector, flip.reason)
        groups[key] += 1
        example.setdefault(key, flip)
    for direction in sorted(result.directions):
        click.echo(f"\n{direction}")
        for key, count in groups.most_common():
            if key[0] != direction:
                continue
            _, what, name, inspector, reason = key
            path = str(example[key].record.get("path", ""))
            was = "" if example[key].new_block else "was "
            click.echo(f"  {count:>6}  {what} {name}{path[:60]}  {was}{inspector}: {reason}")


def _as_json(candidate: Path, result: ReplayResult) -> dict[str, Any]:
    keys = ("kind", "time", "method", "scheme", "host", "port", "path", "qname", "qtype")
    return {
        "candidate": str(candidate),
        "replayed": result.replayed,
        "not_replayed": dict(result.skipped),
        "kept": dict(result.kept),
        "flips": dict(result.directions),
        "new_blocks": result.new_blocks,
        "changes": [
            {
                "from": flip.before,
                "to": flip.after,
                "inspector": flip.inspector,
                "reason": flip.reason,
                **{key: flip.record[key] for key in keys if key in flip.record},
            }
            for flip in result.flips
        ],
    }
