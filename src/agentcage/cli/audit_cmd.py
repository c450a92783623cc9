"""`agentcage audit`: a cage's proxy and DNS decisions as a table, or as the raw JSON lines."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import click

from agentcage.audit.reading import AuditLogs, Line, Record, named_logs
from agentcage.audit.selection import TIME_HELP, Selection, parse_when
from agentcage.audit.table import StatusJoin, cells, format_row, header
from agentcage.cage.layout import audit_logs
from agentcage.cage.remote_hosts import cage_host, fetch_audit, follow_audit
from agentcage.cage.remote_tail import RemoteTail
from agentcage.cage.state import StateStore
from agentcage.errors import AgentcageError, StateError

POLL_SECONDS = 0.25
HOLD_SECONDS = 1.0  # how long a followed row waits for its status
FOLLOW_LAST = 10


def log_paths(targets: tuple[str, ...], as_files: bool) -> list[Path]:
    """The audit logs of cages `targets`, or the files `targets` with `as_files`.

    A cage on a host target (`--host`) has its logs there: they are copied here first.
    """
    if as_files:
        return named_logs(Path(target) for target in targets)
    store = StateStore()
    paths = []
    for name in targets:
        if not store.exists(name):
            raise StateError(
                f"no cage named {name!r}",
                hint="`agentcage cage list` shows your cages; "
                "`agentcage audit --file PATH` reads a log file",
            )
        fetch_audit(store, name)
        paths += audit_logs(store, name)
    return paths


class _Source(Protocol):
    def poll(self) -> list[Line]: ...


def _follow_there(logs: AuditLogs, targets: tuple[str, ...], as_files: bool) -> list[RemoteTail]:
    """For each cage on a host target: its logs followed there from where the local copy
    ends (they are no longer polled here, where nothing more is written)."""
    if as_files:
        return []
    store = StateStore()
    tails: list[RemoteTail] = []
    try:
        for name in dict.fromkeys(targets):
            if cage_host(store, name) is not None:
                offsets = logs.hand_off(audit_logs(store, name))
                tails.append(follow_audit(store, name, offsets))
    except BaseException:
        for tail in tails:
            tail.close()
        raise
    return tails


def _style(line: str, verdict: str) -> str:
    colour = {"block": "red", "flag": "yellow"}.get(verdict)
    return click.style(line, fg=colour) if colour else line


class _Printer:
    """Prints rows (table) or lines (JSON), keeping only the last N until `flush`."""

    def __init__(self, as_json: bool, last: int | None) -> None:
        self.as_json = as_json
        self._kept: deque[str] | None = deque(maxlen=last) if last else None
        self._header = as_json
        self.count = 0

    def rows(self, rows: Iterable[Record]) -> None:
        self.lines(format_row(cells(row), _style) for row in rows)

    def lines(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.count += 1
            if self._kept is not None:
                self._kept.append(text)
            else:
                self._echo(text)

    def flush(self) -> None:
        """Print what `--last` kept, and print everything from now on."""
        kept, self._kept = self._kept or (), None
        for text in kept:
            self._echo(text)

    def _echo(self, text: str) -> None:
        if not self._header:
            click.echo(header())
            self._header = True
        click.echo(text)


def _feed(lines: Iterable[Line], join: StatusJoin, out: _Printer, selection: Selection) -> None:
    now = time.monotonic()
    for line in lines:
        if out.as_json:
            if selection.matches(line.record):
                out.lines([line.text])
        else:
            join.add(line, now)
            out.rows(join.ready())


def log_targets(command: Callable[..., None]) -> Callable[..., None]:
    """`NAME...` and `--file`, as `log_paths` takes them."""
    command = click.option(
        "--file",
        "as_files",
        is_flag=True,
        help="The arguments are audit log files (e.g. of `proxy run --audit-log FILE`), not "
        "cage names; each file's rotations (FILE.1, FILE.2, ...) are read too.",
    )(command)
    return click.argument("targets", nargs=-1, required=True, metavar="NAME...")(command)


@click.command()
@log_targets
@click.option("--blocked", is_flag=True, help="Only blocked decisions.")
@click.option("--flagged", is_flag=True, help="Only flagged decisions (with --blocked: both).")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help="Only this host or DNS name and names below it; repeatable.",
)
@click.option(
    "--inspector",
    "inspectors",
    multiple=True,
    metavar="NAME",
    help="Only decisions of this inspector (domain, egress, dns-domains, ...); repeatable.",
)
@click.option("--since", metavar="TIME", help=f"Only records from TIME on: {TIME_HELP}.")
@click.option("--until", metavar="TIME", help=f"Only records up to TIME: {TIME_HELP}.")
@click.option(
    "-n",
    "--last",
    type=click.IntRange(min=1),
    metavar="N",
    help=f"Only the last N rows (default: all; {FOLLOW_LAST} with --follow).",
)
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Then keep printing new records as they are written, across rotations, until Ctrl-C.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the matching records as the JSON lines they are in the log, unchanged "
    "(`response` lines included).",
)
def audit(
    targets: tuple[str, ...],
    as_files: bool,
    blocked: bool,
    flagged: bool,
    hosts: tuple[str, ...],
    inspectors: tuple[str, ...],
    since: str | None,
    until: str | None,
    last: int | None,
    follow: bool,
    as_json: bool,
) -> None:
    """Show the proxy's and the DNS sidecar's decisions for cage NAME, newest last.

    One row per decision: time (local), verdict, inspector, method (`dns/A` for a DNS
    query, `ws>`/`ws<` for a WebSocket message), host, path, the status the exchange
    ended with, and the reason. Reads the live log and its rotated files, so it works
    on a stopped cage too.
    """
    now = datetime.now(UTC)
    selection = Selection.of(
        blocked=blocked,
        flagged=flagged,
        hosts=hosts,
        inspectors=inspectors,
        since=parse_when(since, now) if since else None,
        until=parse_when(until, now) if until else None,
    )
    paths = log_paths(targets, as_files)
    logs = AuditLogs(paths)
    join = StatusJoin(selection)
    out = _Printer(as_json, last or (FOLLOW_LAST if follow else None))
    tails: list[RemoteTail] = []
    try:
        _feed(logs.existing(), join, out, selection)
        out.rows(join.ready(time.monotonic(), 0.0) if follow else join.rest())
        out.flush()
        if not follow:
            if not out.count:
                where = ", ".join(str(path) for path in paths)
                click.echo(f"no matching records in {where} (or its rotated files)", err=True)
            return
        tails = _follow_there(logs, targets, as_files)
        _follow([logs, *tails], join, out, selection)
    finally:
        logs.close()
        for tail in tails:
            tail.close()


def _follow(sources: list[_Source], join: StatusJoin, out: _Printer, selection: Selection) -> None:
    try:
        while True:
            polled = [line for source in sources for line in source.poll()]
            _feed(sorted(polled, key=lambda line: line.time), join, out, selection)
            out.rows(join.ready(time.monotonic(), HOLD_SECONDS))
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        out.rows(join.rest())
    except AgentcageError:  # a target lost: the rows held for their status first
        out.rows(join.rest())
        raise
