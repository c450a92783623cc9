"""Taking a cage off its host, and proving that nothing of it is left.

`inventory` lists what the host still holds of a cage: unit files, systemd units that are
loaded or running, containers, networks, volumes and Podman secrets. When it cannot ask
systemd or Podman it raises `UnreachableError` before anything is touched: a host that
cannot be seen is never taken for an empty one. `remove` takes away what an inventory
found; the caller deletes the cage's state only once a second inventory comes back empty.

Names are matched exactly, never by prefix alone: `agentcage-a-*` also matches the
parts of a cage named `a-b`. Unit files (quadlets, or the plain services of hosts without
quadlet: service_units.py) count when they carry the cage's label or have one of the
names only this cage's files can have.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

from agentcage.cage.contract import secret_of
from agentcage.cage.host_files import HostFiles, LocalFiles
from agentcage.cage.podman import Completed, PodmanHost, stderr_tail
from agentcage.cage.running import PORTS, ROLES, VM
from agentcage.cage.topology import prefix
from agentcage.errors import PodmanError, UnreachableError

_NETWORKS = ("int", "ext")


@dataclass(frozen=True)
class Remains:
    """What a host still holds of one cage."""

    unit_files: tuple[Path, ...] = ()
    units: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def lines(self) -> list[str]:
        """One line per kind that is left, e.g. `containers: agentcage-x-agent`."""
        out = []
        for f in fields(self):
            values = getattr(self, f.name)
            if values:
                out.append(f"{f.name.replace('_', ' ')}: {', '.join(map(str, values))}")
        return out


def unit_files(directory: Path, cage: str, files: HostFiles | None = None) -> list[Path]:
    """The cage's quadlet files in `directory`."""
    return _cage_files(
        files, directory, cage, ".container", ".network", r"(?m)^Label=.*(?<![\w.-])"
    )


def service_files(directory: Path, cage: str, files: HostFiles | None = None) -> list[Path]:
    """The cage's plain systemd services in `directory` (hosts without quadlet)."""
    return _cage_files(files, directory, cage, ".service", "-network.service", r"--label ")


def host_unit_files(host: PodmanHost, cage: str) -> list[Path]:
    """Both kinds, where this host keeps each."""
    return [
        *unit_files(host.quadlet_dir, cage, host.files),
        *service_files(host.systemd_dir, cage, host.files),
    ]


def _cage_files(
    files: HostFiles | None,
    directory: Path,
    cage: str,
    container: str,
    network: str,
    label_before: str,
) -> list[Path]:
    """Files named for the cage's containers and networks, or carrying its label."""
    first = prefix(cage)
    exact = {f"{first}-{role}{container}" for role in (*ROLES, PORTS, VM)}
    exact |= {f"{first}-{net}{network}" for net in _NETWORKS}
    label = re.compile(rf"{label_before}agentcage\.cage={re.escape(cage)}(?![\w.-])")
    found = (files or LocalFiles()).read_matching(directory, f"{first}-")
    return [path for path, text in found.items() if path.name in exact or label.search(text)]


def service_names(cage: str, files: Iterable[Path], volumes: Iterable[str]) -> list[str]:
    """Every systemd service the cage has or may still have loaded."""
    first = prefix(cage)
    names = [f"{first}-{role}.service" for role in (VM, PORTS, *reversed(ROLES))]
    names += [f"{first}-{net}-network.service" for net in _NETWORKS]
    names += [f"{first}-{volume}-volume.service" for volume in volumes]
    for path in files:  # quadlet's naming: x.volume -> x-volume.service
        if path.suffix in (".volume", ".network"):
            names.append(f"{path.stem}-{path.suffix[1:]}.service")
        elif path.suffix == ".service":
            names.append(path.name)
    return list(dict.fromkeys(names))


def inventory(
    host: PodmanHost, cage: str, volumes: Iterable[str] = (), since: Remains | None = None
) -> Remains:
    """What of `cage` the host still holds; `UnreachableError` if it cannot be asked.

    `since`: an earlier inventory, after which nothing of the cage was made. Podman is
    then asked only about the kinds it found (each listing is a `podman` process, about
    0.15 s here); what was absent then is absent now. systemd is always asked.
    """
    files = host_unit_files(host, cage)
    label = f"label=agentcage.cage={cage}"
    networks = {f"{prefix(cage)}-{net}" for net in _NETWORKS}

    def listing(kind: str, *args: str) -> Callable[[], list[str]]:
        if since is not None and not getattr(since, kind):
            return list
        return functools.partial(_listing, host, kind, *args)

    # Independent questions: asked at once, they cost one round trip, not five.
    with ThreadPoolExecutor(max_workers=5) as pool:
        units = pool.submit(_loaded, host, service_names(cage, files, volumes))
        containers = pool.submit(listing("containers", "ps", "-a", "--filter", label))
        all_networks = pool.submit(listing("networks", "network", "ls"))
        cage_volumes = pool.submit(listing("volumes", "volume", "ls", "--filter", label))
        secrets = pool.submit(listing("secrets", "secret", "ls"))
    return Remains(
        unit_files=tuple(files),
        units=tuple(units.result()),
        containers=tuple(containers.result()),
        networks=tuple(n for n in all_networks.result() if n in networks),
        volumes=tuple(cage_volumes.result()),
        secrets=tuple(i for i in secrets.result() if secret_of(cage, i) is not None),
    )


def _loaded(host: PodmanHost, units: list[str]) -> list[str]:
    """The units systemd still knows: loaded from a file, running, or failed."""
    result = host.systemctl("show", "--property=Id,LoadState,ActiveState", *units, check=False)
    if not result.ok:
        raise UnreachableError(f"cannot ask systemd about the units: {stderr_tail(result)}")
    present = []
    for block in result.stdout.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if not props.get("Id"):
            continue
        if props.get("LoadState") != "not-found" or props.get("ActiveState") != "inactive":
            present.append(props["Id"])
    return present


def _listing(host: PodmanHost, what: str, *args: str) -> list[str]:
    fmt = "{{.Names}}" if args[0] == "ps" else "{{.Name}}"
    try:
        result = host.podman(*args, "--format", fmt, check=False)
    except PodmanError as exc:  # podman itself is missing
        raise UnreachableError(f"cannot list {what}: {exc.message}", hint=exc.hint) from exc
    if not result.ok:
        raise UnreachableError(f"cannot list {what} with podman: {stderr_tail(result)}")
    return result.stdout.split()


def remove(host: PodmanHost, found: Remains) -> list[str]:
    """Take away what `found` lists; returns a line for each step that failed.

    Once the containers are gone, systemd's work (stopping the units, which then only
    run their `ExecStopPost=` cleanup, and the reload) and Podman's removals do not
    depend on each other: they run at once (each is a round trip, the reload grows with
    the host's cages). Containers go before the networks and volumes they use.
    """
    problems: list[str] = []

    def attempt(what: str, result: Completed) -> bool:
        if not result.ok:
            problems.append(f"{what}: {stderr_tail(result)[-300:]}")
        return result.ok

    # Every container at once, each stopped as its unit's `ExecStop=podman rm -v -f` would
    # (SIGTERM, then its own stop timeout): systemd would stop the agent first and the
    # sidecars after it, one `podman rm` after the other. The units then have nothing
    # left to stop (a SIGTERM exit counts as success for them: no restart).
    # A microVM cage's unit asks its guest to shut down first (`ExecStop=`): kept.
    microvm = any(unit.endswith(f"-{VM}.service") for unit in found.units)
    removed = (
        bool(found.containers)
        and not microvm
        and attempt(
            "remove containers", host.podman("rm", "-v", "-f", "-i", *found.containers, check=False)
        )
    )
    # Containers that survived the first removal go once their units are stopped; the
    # second inventory checks.
    containers = [] if removed else list(found.containers)

    def stop_units() -> None:
        if found.units:
            attempt("stop units", host.systemctl("stop", *found.units, check=False))

    def systemd() -> None:
        if removed:
            stop_units()  # nothing of Podman's waits for it: the containers are gone
        host.files.unlink(found.unit_files)
        if found.unit_files:
            attempt("daemon-reload", host.systemctl("daemon-reload", check=False))
        if found.units:
            # Forgets failed units; the others answer "not loaded", which is what we want.
            host.systemctl("reset-failed", *found.units, check=False)

    def podman_parts() -> None:
        if containers:
            attempt("remove containers", host.podman("rm", "-f", "-i", *containers, check=False))
        if found.networks:
            attempt(
                "remove networks", host.podman("network", "rm", "-f", *found.networks, check=False)
            )
        if found.volumes:
            attempt(
                "remove volumes", host.podman("volume", "rm", "-f", *found.volumes, check=False)
            )

    def secrets() -> None:
        if found.secrets:
            attempt("remove secrets", host.podman("secret", "rm", *found.secrets, check=False))

    if not removed:
        stop_units()  # a unit's container may still run: stopped before anything it uses
    with ThreadPoolExecutor(max_workers=3) as pool:
        for done in [pool.submit(step) for step in (systemd, podman_parts, secrets)]:
            done.result()
    return problems
