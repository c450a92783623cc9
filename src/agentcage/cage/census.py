"""What systemd and Podman say about many cages at once, in a fixed number of calls.

`cage list` used to ask systemd and Podman once per cage each (two sequential calls per
cage: 4.5 s for 20 cages); here one `systemctl show` answers for any number of units
and one `podman ps` for every container agentcage runs. Whoever reports on several
cages (`cage list`, `cage status`) asks through this module.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass

from agentcage.cage.podman import PodmanHost, stderr_tail
from agentcage.errors import PodmanError, UnreachableError

UNIT_PROPERTIES = ("ActiveState", "SubState", "Result", "LoadState")
CAGE_LABEL = "agentcage.cage"
ROLE_LABEL = "agentcage.role"


@dataclass(frozen=True)
class ContainerState:
    """One container of a cage, as `podman ps` lists it."""

    name: str
    cage: str
    role: str
    state: str  # running, exited, created, ...
    started_at: float | None  # seconds since the epoch


def unit_states(host: PodmanHost, units: Sequence[str]) -> dict[str, dict[str, str]]:
    """unit -> its UNIT_PROPERTIES, for every unit in one `systemctl show`.

    A unit systemd does not know answers LoadState=not-found, ActiveState=inactive.
    `UnreachableError` (nothing is guessed) when systemd cannot be asked.
    """
    if not units:
        return {}
    properties = f"--property=Id,{','.join(UNIT_PROPERTIES)}"
    result = host.systemctl("show", properties, *units, check=False)
    if not result.ok:
        raise UnreachableError(f"systemd did not say how the units are: {stderr_tail(result)}")
    states: dict[str, dict[str, str]] = {}
    for block in result.stdout.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            states[props.pop("Id")] = props
    missing = [unit for unit in units if unit not in states]
    if missing:
        raise UnreachableError(f"systemd said nothing about {', '.join(missing)}")
    return states


def containers(host: PodmanHost) -> dict[str, ContainerState]:
    """name -> state of every container that carries a cage label, in one `podman ps`."""
    try:
        result = host.podman(
            "ps", "-a", "--filter", f"label={CAGE_LABEL}", "--format", "json", check=False
        )
    except PodmanError as exc:  # podman itself is missing
        raise UnreachableError(f"cannot list containers: {exc.message}", hint=exc.hint) from exc
    if not result.ok:
        raise UnreachableError(f"cannot list containers with podman: {stderr_tail(result)}")
    try:
        listed = json.loads(result.stdout or "[]")
    except ValueError as exc:
        raise UnreachableError(f"podman ps printed no JSON: {result.stdout[:200]!r}") from exc
    found = {}
    for entry in listed if isinstance(listed, list) else []:
        names = entry.get("Names") or []
        labels = entry.get("Labels") or {}
        if not names:
            continue
        started = entry.get("StartedAt")
        found[names[0]] = ContainerState(
            name=names[0],
            cage=str(labels.get(CAGE_LABEL, "")),
            role=str(labels.get(ROLE_LABEL, "")),
            state=str(entry.get("State", "")),
            started_at=float(started) if isinstance(started, int | float) and started > 0 else None,
        )
    return found


def since(started_at: float | None) -> tuple[str, float | None]:
    """When a container started (UTC, to the second) and how long ago, if Podman said."""
    if started_at is None:
        return "", None
    stamp = datetime.datetime.fromtimestamp(started_at, datetime.UTC)
    now = datetime.datetime.now(datetime.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S"), (now - stamp).total_seconds()
