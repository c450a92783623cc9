"""`agentcage host check|start|stop|status|image|add|list|rm`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from agentcage.cage.host_check import render, run_checks
from agentcage.cage.host_container import HostContainers, HostContainerStatus
from agentcage.cage.host_image import HostImageRecipe, host_image
from agentcage.cage.podman import PodmanHost, SubprocessRunner
from agentcage.cage.podman_machine import inspect_machine
from agentcage.cage.remote_hosts import RemoteHosts, cage_host, chosen
from agentcage.cage.ssh_target import host_key_fingerprint, parse_address
from agentcage.cage.state import StateStore
from agentcage.cage.vm.vm_host_check import check_microvm


def _containers() -> HostContainers:
    return HostContainers(progress=lambda line: click.echo(line, err=True))


@click.group()
def host() -> None:
    """Check this machine, or run cages in a systemd + Podman host container."""


@host.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--microvm",
    is_flag=True,
    help="Also report KVM and which monitor (Firecracker, QEMU with KVM or TCG) a microVM "
    "cage would get here (docs/microvm.md).",
)
@click.option(
    "--host",
    "target",
    help="Check this host target (`agentcage host add`) instead of this machine.",
)
def check(as_json: bool, microvm: bool, target: str | None) -> None:
    """Check that cages can run here (or in the host container, or on a host target);
    exit 1 on any failure."""
    name = chosen(target)
    if name:
        podman_host = RemoteHosts().podman_host(name, StateStore())
        podman_host.runner.run(["true"])  # an unreachable target: say so, and what to check
    else:
        podman_host = PodmanHost.detect()
    findings = run_checks(podman_host)
    if microvm:
        findings.append(check_microvm(podman_host))
    failed = sum(f.failed for f in findings)
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        click.echo(render(findings))
        warned = sum(f.status == "warn" for f in findings)
        click.echo(f"{len(findings) - failed - warned} passed, {warned} warnings, {failed} failed")
    if failed:
        sys.exit(1)


@host.command()
@click.option("--name", help="Container name (default: the recorded one, or agentcage-host).")
@click.option(
    "--share",
    "shares",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A directory cages bind-mount from, mounted at the same path (repeatable). Adds "
    "to the directories shared before; agentcage's own state directory is always shared.",
)
@click.option(
    "--share-ro",
    "readonly",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Like --share, mounted read-only (repeatable).",
)
def start(name: str | None, shares: tuple[Path, ...], readonly: tuple[Path, ...]) -> None:
    """Run systemd + Podman 5 in a privileged container; cage commands then target it."""
    containers = _containers()
    containers.start(name, shares, readonly)
    _print_status(containers.status(), containers.cages())


@host.command()
@click.option(
    "--forget",
    is_flag=True,
    help="Also delete its storage and the record, so cages run on this machine again "
    "(refused while cages exist).",
)
def stop(forget: bool) -> None:
    """Stop the host container (its cages stop too and come back at `host start`)."""
    target = _containers().stop(forget)
    if forget:
        click.echo(f"host container {target.name} stopped and forgotten")
    else:
        click.echo(
            f"host container {target.name} stopped; cage commands still target it: "
            "`agentcage host start` brings it and its cages back"
        )


@host.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
def status(as_json: bool) -> None:
    """Whether cages run in a host container, and its state; exit 1 unless it runs."""
    containers = _containers()
    state = containers.status()
    if as_json:
        click.echo(json.dumps({**state.as_dict(), "cages": containers.cages()}, indent=2))
    else:
        _print_status(state, containers.cages())
    if not state.running:
        sys.exit(1)


@host.command()
@click.option(
    "--debian12",
    is_flag=True,
    help="The Debian 12 variant (Podman 4.3.1, no quadlet) the end-to-end tests also use.",
)
def image(debian12: bool) -> None:
    """Build the host container's image if missing (from Debian packages); print its name."""
    recipe = HostImageRecipe.for_this_machine()
    click.echo(host_image(_containers().builder, recipe.debian12() if debian12 else recipe))


@host.command()
@click.argument("name")
@click.argument("address", required=False)
@click.option(
    "--identity",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The private key to log in with (default: ssh's own choice, e.g. your agent).",
)
@click.option(
    "--podman-machine",
    "machine",
    is_flag=False,
    flag_value="",
    default=None,
    help="Take address, user and key from `podman machine inspect [MACHINE]` (macOS, "
    "Windows); without a value, Podman's default machine.",
)
def add(name: str, address: str | None, identity: Path | None, machine: str | None) -> None:
    """Add host target NAME: a Linux host with systemd and Podman, reached over SSH.

    ADDRESS is ssh://user@host[:port]. The first connection records the host's key (its
    fingerprint is printed); later connections require the same key. Cages go there
    with `agentcage cage create --host NAME` (docs/remote.md).
    """
    if (address is None) == (machine is None):
        raise click.UsageError("give either ADDRESS (ssh://user@host:port) or --podman-machine")
    if machine is not None:
        target = inspect_machine(SubprocessRunner(), name, machine or None)
    else:
        assert address is not None
        target = parse_address(name, address, identity.resolve() if identity else None)
    hosts = RemoteHosts()
    learned = hosts.add(target)
    kind = "rootless" if learned.rootless else "rootful"
    click.echo(f"host target {name}: {learned.address} ({kind} Podman, home {learned.home})")
    key = host_key_fingerprint(hosts.control_dir, learned)
    if key:
        click.echo(f"host key: {key}")
    click.echo(f"`agentcage host check --host {name}` checks it")


@host.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
def list_(as_json: bool) -> None:
    """The host targets added with `host add`, and which cages run on each."""
    store = StateStore()
    targets = RemoteHosts().all()
    rows = [
        {
            **target.as_dict(),
            "address": target.address,
            "cages": [c for c in store.names() if cage_host(store, c) == name],
        }
        for name, target in targets.items()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no host targets; `agentcage host add NAME ssh://user@host:port` adds one")
    for row in rows:
        cages = ", ".join(map(str, row["cages"])) or "no cages"  # type: ignore[call-overload]
        click.echo(f"{row['name']:<20} {row['address']:<36} {row['kind']:<15} {cages}")


@host.command()
@click.argument("name")
def rm(name: str) -> None:
    """Forget host target NAME (refused while cages run there)."""
    RemoteHosts().remove(name, StateStore())
    click.echo(f"host target {name} removed")


def _print_status(state: HostContainerStatus, cages: list[str]) -> None:
    target = state.target
    if target is None:
        click.echo("no host container: cages run on this machine (`agentcage host check`)")
        return
    shown = "stopped (`agentcage host start`)" if state.state == "absent" else state.state
    line = f"host container {target.name}: {shown}"
    if state.running:
        line += f" (systemd {state.systemd or 'unreachable'}, Podman {state.podman or '?'})"
    click.echo(line)
    click.echo(f"image: {target.image}" + ("" if state.image_current else " (outdated)"))
    if not state.image_current:
        click.echo("  `agentcage host stop && agentcage host start` moves to the current image")
    click.echo(f"units: {target.quadlet_dir}")
    click.echo("shared at the same path: " + ", ".join(str(s) for s in target.shares))
    if target.readonly:
        click.echo("  read-only: " + ", ".join(str(s) for s in target.readonly))
    click.echo("cages: " + (", ".join(cages) or "none"))
    click.echo(f"isolation: {state.isolation()}")
