"""The `agentcage cage` commands, from create to destroy; `status` and `list` report."""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agentcage.cage.base_choice import choose_base
from agentcage.cage.observe import duration
from agentcage.cage.remote_hosts import (
    HOST_VARIABLE,
    cage_host,
    cages_for,
    cages_on,
    chosen,
    destroyer_for,
    fetch_audit,
    parts_for,
    record_cage_host,
    release_images,
    remove_images,
)
from agentcage.errors import AgentcageError

if TYPE_CHECKING:
    # The facade (and with it the config schema, pydantic, images and units) is imported
    # by the commands that use it, through `cages_for`/`cages_on`: `cage destroy` never does.
    from agentcage.cage.lifecycle import Cages, CageStatus

# `cage status` reported, and a service is down or unhealthy (systemctl's "not running").
UNHEALTHY = 3

_BASE_HELP = (
    "Base of the proxy/DNS images: `registry` (a digest-pinned Python image; "
    "$AGENTCAGE_REGISTRY_BASE names another, pinned by digest too) or `debian` (built from "
    "Debian packages, no registry needed). Default: $AGENTCAGE_IMAGE_BASE or registry."
)
_UPDATE_BASE_HELP = "As for create; default: the base the cage was created (or last updated) with."


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _cages(name: str) -> Cages:
    """Cages driving wherever NAME was created (this machine, or its `--host` target)."""
    return cages_for(name, _progress)


_HOST = click.option(
    "--host",
    "host",
    help=f"Create the cage on this host target (`agentcage host add`); default: ${HOST_VARIABLE}, "
    "else this machine. Later commands on the cage find it there by themselves.",
)


@click.group()
def cage() -> None:
    """Create, inspect and destroy cages."""


@cage.result_callback()
def _done(*_: object, **__: object) -> None:
    """After a cage command has done its work: Python's exit then skips collecting the
    pydantic schema's and the facade's objects (about 43,000), which took 32 to 86 ms
    after a create here (5 to 7 ms frozen; a shell and `cage verify` wait for that exit).
    Everything the command wrote is closed already. Frozen at exit, not now: the exit's
    other atexit handlers (the exec session's end) run as before, and a caller running
    commands in-process (tests' CliRunner) keeps collecting until its own exit."""
    atexit.unregister(gc.freeze)  # registered once, however many commands a process runs
    atexit.register(gc.freeze)


_CONFIG = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The cage's config YAML.",
)
_UPSTREAM_HELP = (
    "Extra CA bundle (PEM) the proxy trusts for upstream servers, e.g. a company's "
    "TLS-inspecting gateway."
)


@cage.command()
@_CONFIG
@click.option("--base", type=click.Choice(["registry", "debian"]), help=_BASE_HELP)
@click.option("--upstream-ca", type=click.Path(path_type=Path, dir_okay=False), help=_UPSTREAM_HELP)
@_HOST
def create(config_path: Path, base: str | None, upstream_ca: Path | None, host: str | None) -> None:
    """Build images, write quadlet units and start a new cage from a config file."""
    target = chosen(host)
    try:
        kind: str | None = choose_base(base)
    except AgentcageError:
        kind = None  # raised below, after the config's own errors, as before
    # Asks the host its first questions now (and this machine's Podman about the images
    # on that base): answered while the rest loads and validates.
    cages = cages_on(target, progress=_progress, ask_ahead=True, base=kind)
    from agentcage.config import load_config

    config = load_config(config_path)
    name = config.name
    recorded = target is not None and not cages.store.exists(name)
    if target is not None and recorded:
        # First: a create that fails half-way is rolled back on that target.
        record_cage_host(cages.store, name, target)
    try:
        config = cages.create(config_path, choose_base(base), upstream_ca, config)
    except AgentcageError:
        if recorded and not cages.store.exists(name):  # rolled back: the copies go too
            with contextlib.suppress(AgentcageError):
                remove_images(cages, release_images(cages, name, target))
        raise
    _say_started(cages, config.name, "created", cages.deployed_states.get(config.name))


def _say_started(cages: Cages, name: str, done: str, state: str | None) -> None:
    """Say what runs now: an agent that already exited is not "running".

    `state`: the agent's ActiveState as the start just saw it (None: ask systemd).
    """
    state = state or cages.status(name).state
    if state == "active":
        click.echo(f"cage {name} is running; `agentcage cage verify {name}` checks it")
        return
    why = " (it ran and exited; proxy and DNS keep running)" if state == "inactive" else ""
    click.echo(
        f"cage {name} {done}; its agent is {state}{why}; "
        f"`agentcage cage logs {name}` shows its output"
    )


@cage.command()
@_CONFIG
@_HOST
def units(config_path: Path, host: str | None) -> None:
    """Print the units CONFIG would get (TAG stands for the built image's tag).

    Nothing is built, written or started: review what `create` would do.
    """
    cages = cages_on(chosen(host), progress=_progress)
    directory, preview = cages.deployable(cages.preview_units(config_path))
    click.echo(f"# into {directory}")
    for filename, text in preview.rendered().items():
        click.echo(f"\n# --- {filename}\n{text}", nl=False)


@cage.command()
@click.argument("name")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="A new config YAML (default: the one NAME was deployed from).",
)
@click.option("--base", type=click.Choice(["registry", "debian"]), help=_UPDATE_BASE_HELP)
@click.option("--upstream-ca", type=click.Path(path_type=Path, dir_okay=False), help=_UPSTREAM_HELP)
def update(name: str, config_path: Path | None, base: str | None, upstream_ca: Path | None) -> None:
    """Re-deploy NAME, from a new config file or from its stored one.

    Options `create` was given (--base, --upstream-ca) are kept unless given again.
    """
    cages = _cages(name)
    cages.update(name, config_path, choose_base(base) if base else None, upstream_ca)
    _say_started(cages, name, "updated", cages.deployed_states.get(name))


@cage.command()
@click.argument("name")
def start(name: str) -> None:
    """Start NAME's proxy, DNS and agent (after `stop`, or once the agent has exited)."""
    cages = _cages(name)
    _say_started(cages, name, "started", cages.start(name))


@cage.command()
@click.argument("name")
def stop(name: str) -> None:
    """Stop NAME's agent, proxy and DNS; nothing is removed (`start` brings it back)."""
    _cages(name).stop(name)
    click.echo(f"cage {name} stopped")


@cage.command()
@click.argument("name")
def restart(name: str) -> None:
    """Restart NAME's containers: proxy and DNS healthy first, then the agent."""
    cages = _cages(name)
    _say_started(cages, name, "restarted", cages.restart(name))


@cage.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
def list_cages(as_json: bool) -> None:
    """Every cage with its state, uptime and count of blocked requests."""
    rows = _statuses()
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows], indent=2))
        _unreachable(rows)
        return
    if not rows:
        click.echo("no cages; create one with `agentcage cage create -c CONFIG`")
        return
    click.echo(f"{'NAME':<20} {'STATE':<12} {'UPTIME':>10} {'BLOCKED':>8}")
    for row in rows:
        uptime = duration(row.uptime_s) if row.uptime_s is not None else "-"
        click.echo(f"{row.name:<20} {row.state:<12} {uptime:>10} {row.blocked:>8}")
    _unreachable(rows)


@cage.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools (docs/operations.md).")
def status(name: str, as_json: bool) -> None:
    """NAME's services (state, health, uptime, restarts, image digests), the policy they
    run, the last hour's allowed/flagged/blocked decisions, and how the cage is weakened.

    Exits 0 when every service runs and none is unhealthy, 3 when the report says one
    is not (for scripts and health checks), 1 when it could not be made.
    """
    from agentcage.cage.status_report import render, report

    found = report(_cages(name), name)
    click.echo(json.dumps(found.as_dict(), indent=2) if as_json else render(found))
    if found.problems:
        sys.exit(UNHEALTHY)


def _statuses() -> list[CageStatus]:
    """Every cage's row, asking each host target once about all of its cages."""
    here = cages_on(None)
    store = here.store
    groups: dict[str | None, list[str]] = {}
    for name in store.names():
        groups.setdefault(cage_host(store, name), []).append(name)
    rows = []
    for host, names in groups.items():
        if host is not None:
            for name in names:
                with contextlib.suppress(AgentcageError):
                    fetch_audit(store, name)  # the blocked counts; an unreachable one says so
        rows += (here if host is None else cages_on(host, store)).statuses(names)
    return sorted(rows, key=lambda row: row.name)


def _unreachable(rows: list[CageStatus]) -> None:
    """A state nobody could ask for is an error, not a blank: exit 1 and say why."""
    failed = [row for row in rows if row.state == "unreachable"]
    for row in failed:
        click.echo(f"error: cage {row.name}: {row.error}", err=True)
    if failed:
        sys.exit(1)


@cage.command()
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--missing-ok", is_flag=True, help="Exit 0 if there is no such cage (for scripts).")
def destroy(name: str, yes: bool, missing_ok: bool) -> None:
    """Stop NAME and remove its units, containers, networks, volumes, secrets and state.

    The state is deleted last, only once none of the rest is left; if the cage's systemd
    or Podman cannot be reached, nothing is deleted and the command exits 1.
    """
    cages = destroyer_for(name, _progress)
    if not yes and cages.store.path(name).exists():
        click.confirm(f"destroy cage {name!r} and everything it holds?", abort=True)
    copied = release_images(cages, name)
    if cages.destroy(name, missing_ok=missing_ok):
        remove_images(cages, copied)
        click.echo(f"cage {name} destroyed")
    else:
        click.echo(f"no cage named {name!r}; nothing to destroy")


@cage.command()
@click.argument("name")
def reload(name: str) -> None:
    """Make NAME's proxy and DNS re-read their config (SIGHUP); the agent keeps running."""
    reloaded = _cages(name).reload(name)
    if reloaded:
        click.echo(f"cage {name}: {' and '.join(reloaded)} reloaded")
    else:
        click.echo(f"cage {name}: nothing runs; the sidecars read the config when they start")


@cage.command()
@click.argument("name")
@click.option(
    "-s",
    "--service",
    type=click.Choice(["cage", "agent", "proxy", "dns"]),
    default="cage",
    show_default=True,
    help="`cage` and `agent` both mean the agent.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(name: str, service: str, follow: bool) -> None:
    """Print the logs of NAME's agent, proxy or DNS container."""
    cages = _cages(name)
    text = cages.vm_log(name, service)
    if text is not None:  # a microVM cage: the log is in its guest
        click.echo(text, nl=False)
        return
    argv = [*cages.host.runner_prefix(), *cages.logs_argv(name, service, follow)]
    try:
        code = subprocess.call(argv)
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


@cage.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def verify(name: str, as_json: bool) -> None:
    """Check from inside NAME that its walls hold; exit 1 if any check fails."""
    from agentcage.cage.verify import verify as run_verify

    # The store and the host only: the facade would load the config schema (pydantic).
    results = run_verify(parts_for(name, _progress), name)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            mark = click.style("pass", fg="green") if r.passed else click.style("FAIL", fg="red")
            click.echo(f"[{mark}] {r.name}: {r.detail}")
        failed = sum(not r.passed for r in results)
        click.echo(f"{len(results) - failed} passed, {failed} failed")
    if any(not r.passed for r in results):
        sys.exit(1)
