"""Taking a cage off its host, and proving that nothing of it is left.

`inventory` lists what the host still holds of a cage: unit files, systemd units that are
loaded or running, containers, networks, volumes and Podman secrets. When it cannot ask
systemd or Podman it raises `UnreachableError`: a host that cannot be seen is never taken
for an empty one. systemd is asked before anything is touched; with `remove_first`, the
containers' removal by name and the unit files' removal with systemd's reload run at once,
and Podman's listings beside the rest of the removal once systemd has reloaded (a Podman
that cannot list cannot remove either, as a rule). `remove` takes away what an inventory
found and looks again; the caller deletes the cage's state only once that look comes back
empty.

Names are matched exactly, never by prefix alone: `agentcage-a-*` also matches the
parts of a cage named `a-b`. Unit files (quadlets, or the plain services of hosts without
quadlet: service_units.py) count when they carry the cage's label or have one of the
names only this cage's files can have.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields, replace
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
    host: PodmanHost,
    cage: str,
    volumes: Iterable[str] = (),
    remove_first: bool = False,
) -> Remains:
    """What of `cage` the host still holds; `UnreachableError` if it cannot be asked.

    systemd and Podman are asked at once (each Podman listing is a `podman` process).

    `remove_first` (a cage whose state says it exists): once systemd has answered, the
    cage's containers are removed by name (`podman rm -v -f -i`, as `remove` would), and
    the cage's unit files go with a `daemon-reload` beside them (`_forget_units`); Podman
    lists the rest once the reload is done, while the removal still runs, instead of
    after it. A host whose systemd cannot be asked is still left untouched. Not for a
    microVM cage, whose unit shuts its guest down first. The containers that removal
    took and the unit files systemd has forgotten are not in the answer.
    """
    files = host_unit_files(host, cage)
    names = service_names(cage, files, volumes)
    if not remove_first:
        with ThreadPoolExecutor(max_workers=5) as pool:
            units = pool.submit(_loaded, host, names)
            listed = _ask_podman(host, cage, pool)
        return _remains(files, units.result(), listed)
    loaded = _loaded(host, names)  # first: nothing is touched unless systemd answers
    by_name = () if _microvm(loaded, files) else _role_containers(cage)
    with ThreadPoolExecutor(max_workers=6) as pool:
        # The reload is asked first: systemd handles a container's exit only once it has
        # reloaded, and Podman takes longer to start and stop a container than systemctl
        # takes to ask for the reload.
        forgotten = pool.submit(_forget_units, host, files) if by_name and files else None
        removal = pool.submit(_remove_containers, host, by_name) if by_name else None
        if forgotten is not None:
            # The listings wait for the reload: started with the removal, they held its
            # SIGTERMs back (Podman processes starting at once wait for each other) by
            # 0.2-0.4 s on 2 cores, while the removal only stops its containers by then
            # and waits for the reload itself (Podman stops each health check timer
            # through systemd, which answers once it has reloaded).
            wait([forgotten])
        listed = _ask_podman(host, cage, pool)
    found = _remains(files, loaded, listed)
    if forgotten is not None and forgotten.result():
        found = replace(found, unit_files=())
    if removal is None or not removal.result().ok:
        return found  # `remove` takes them the usual way (and reports a failure)
    return replace(found, containers=tuple(c for c in found.containers if c not in by_name))


def _role_containers(cage: str) -> tuple[str, ...]:
    return tuple(f"{prefix(cage)}-{role}" for role in (*ROLES, PORTS))


def _microvm(units: Iterable[str], files: Iterable[Path]) -> bool:
    ours = (f"-{VM}.service", f"-{VM}.container")
    return any(n.endswith(ours) for n in (*units, *(path.name for path in files)))


def _forget_units(host: PodmanHost, files: Sequence[Path]) -> bool:
    """Take the unit files away and have systemd reload: True once it has.

    A unit whose file is gone keeps running after the reload, without its settings: when
    its container goes, systemd runs none of its `ExecStop=` and `ExecStopPost=` (each a
    `podman rm --cidfile` of a container already removed, one after the other: two
    Podman processes per unit) and restarts nothing; the unit is simply over. The
    cidfile goes with the container (Podman removes it with the container).
    """
    host.files.unlink(files)
    return host.systemctl("daemon-reload", check=False).ok


def _remove_containers(host: PodmanHost, containers: Sequence[str]) -> Completed:
    # Each container stopped as its unit's `ExecStop=podman rm -v -f` would (SIGTERM,
    # then its own stop timeout), all at once. `-t 0` would SIGKILL them: an exit that
    # is not a success to the units, which then restart them.
    return host.podman("rm", "-v", "-f", "-i", *containers, check=False)


_PODMAN_KINDS = ("containers", "networks", "volumes", "secrets")


def _ask_podman(
    host: PodmanHost, cage: str, pool: ThreadPoolExecutor
) -> dict[str, Future[list[str]]]:
    """Podman's listing of each kind, asked at once."""
    return {kind: pool.submit(_cage_listing, host, cage, kind) for kind in _PODMAN_KINDS}


def _cage_listing(host: PodmanHost, cage: str, kind: str) -> list[str]:
    """The cage's containers, networks, volumes or secrets that Podman lists."""
    label = f"label=agentcage.cage={cage}"
    if kind == "containers":
        return _listing(host, kind, "ps", "-a", "--filter", label)
    if kind == "volumes":
        return _listing(host, kind, "volume", "ls", "--filter", label)
    if kind == "networks":
        ours = {f"{prefix(cage)}-{net}" for net in _NETWORKS}
        return [n for n in _listing(host, kind, "network", "ls") if n in ours]
    return [i for i in _listing(host, kind, "secret", "ls") if secret_of(cage, i) is not None]


def _remains(
    files: Iterable[Path], units: Iterable[str], listed: dict[str, Future[list[str]]]
) -> Remains:
    """An inventory from systemd's answer and Podman's."""
    kinds = {kind: tuple(answer.result()) for kind, answer in listed.items()}
    return Remains(unit_files=tuple(files), units=tuple(units), **kinds)


def _loaded(host: PodmanHost, units: list[str]) -> list[str]:
    """The units systemd still knows: loaded from a file, running, or failed."""
    return list(_unit_states(host, units))


def _unit_states(host: PodmanHost, units: list[str]) -> dict[str, str]:
    """Each unit systemd still knows (`_loaded`), with its `ActiveState`."""
    result = host.systemctl("show", "--property=Id,LoadState,ActiveState", *units, check=False)
    if not result.ok:
        raise UnreachableError(f"cannot ask systemd about the units: {stderr_tail(result)}")
    present = {}
    for block in result.stdout.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if not props.get("Id"):
            continue
        if props.get("LoadState") != "not-found" or props.get("ActiveState") != "inactive":
            present[props["Id"]] = props.get("ActiveState", "")
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


def remove(
    host: PodmanHost, cage: str, found: Remains, volumes: Iterable[str] = ()
) -> tuple[list[str], Remains]:
    """Take away what `found` lists, then look again: (a line per failed step, what is left).

    Once the containers are gone, systemd's work (the unit files' removal and the reload,
    then the stop of what is still loaded) and Podman's removals do not depend on each
    other: they run at once (each is a round trip, the reload grows with the host's
    cages). Containers go before the networks and volumes they use. Each side looks
    again as soon as its own work is done (Podman's listings do not wait for the
    reload): at the units the cage has or had, at its containers, and at the other kinds
    `found` held (what was absent then is absent now).
    """
    problems: list[str] = []

    def attempt(what: str, result: Completed) -> bool:
        if not result.ok:
            problems.append(f"{what}: {stderr_tail(result)[-300:]}")
        return result.ok

    # Every container at once (`_remove_containers`): systemd would stop the agent first
    # and the sidecars after it, one `podman rm` after the other. The units then have
    # nothing left to stop (a SIGTERM exit counts as success for them: no restart).
    # A microVM cage's unit asks its guest to shut down first (`ExecStop=`): kept.
    microvm = _microvm(found.units, found.unit_files)
    removed = not microvm and (
        not found.containers
        or attempt("remove containers", _remove_containers(host, found.containers))
    )
    # Containers that survived the first removal go once their units are stopped; the
    # check after it says whether they went.
    containers = [] if removed else list(found.containers)

    def stop_units(units: Sequence[str]) -> None:
        if units:
            attempt("stop units", host.systemctl("stop", *units, check=False))

    def systemd() -> tuple[list[Path], list[str]]:
        # With the containers gone, the files go first: after the reload the units keep
        # no settings, so their stop runs no `ExecStop=` (`_forget_units`). Only what is
        # still loaded is stopped (the network units, a unit still stopping): systemctl
        # refuses to stop a unit systemd no longer knows.
        host.files.unlink(found.unit_files)
        if found.unit_files:
            attempt("daemon-reload", host.systemctl("daemon-reload", check=False))
        files = host_unit_files(host, cage)
        names = service_names(cage, [*found.unit_files, *files], volumes)
        names = list(dict.fromkeys([*names, *found.units]))
        states = _unit_states(host, names)
        if removed and states:
            # Without its settings a unit takes any exit but 0 for a failure (the agent's
            # 143 after SIGTERM, which its `SuccessExitStatus=` allowed): failed units are
            # reset while the running ones stop, at once.
            failed = [unit for unit, state in states.items() if state == "failed"]
            running = [unit for unit in states if unit not in failed]
            with ThreadPoolExecutor(max_workers=2) as both:
                stopped = both.submit(stop_units, running)
                if failed:
                    both.submit(host.systemctl, "reset-failed", *failed, check=False).result()
                stopped.result()
            states = _unit_states(host, names)
        if states:
            # A failed unit stays loaded without its file until it is reset; a stopped one
            # answers "not loaded" once its file is gone and systemd reloaded. Reset only
            # when one is left: most destroys then save a round trip to systemd.
            host.systemctl("reset-failed", *states, check=False)
            states = _unit_states(host, names)
        return files, list(states)

    def podman_parts() -> dict[str, list[str]]:
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
        # Containers are always looked for: `inventory(remove_first=True)` may have taken
        # them before `found` was made.
        kinds = ["containers", *(k for k in ("networks", "volumes") if getattr(found, k))]
        with ThreadPoolExecutor(max_workers=len(kinds)) as listings:
            asked = {kind: listings.submit(_cage_listing, host, cage, kind) for kind in kinds}
        return {kind: answer.result() for kind, answer in asked.items()}

    def secrets() -> list[str]:
        if not found.secrets:
            return []
        attempt("remove secrets", host.podman("secret", "rm", *found.secrets, check=False))
        return _cage_listing(host, cage, "secrets")

    if not removed:
        # A unit's container may still run: stopped before anything it uses.
        stop_units(found.units)
    with ThreadPoolExecutor(max_workers=3) as pool:
        units_done, podman_done, secrets_done = (
            pool.submit(systemd),
            pool.submit(podman_parts),
            pool.submit(secrets),
        )
        files, units = units_done.result()
        listed = podman_done.result()
        left = Remains(
            unit_files=tuple(files),
            units=tuple(units),
            containers=tuple(listed.get("containers", ())),
            networks=tuple(listed.get("networks", ())),
            volumes=tuple(listed.get("volumes", ())),
            secrets=tuple(secrets_done.result()),
        )
    return problems, left
