"""What systemd and Podman say about cages' units and containers: one call to each.

`cage status` asks about every unit in one `systemctl show` and about every container in
one `podman container inspect`; `cage list` asks systemd only (when each agent became
active stands for when its container started), however many cages and services there
are: each call costs a process (and, with a host container, a `podman exec`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agentcage.cage.podman import PodmanHost, failure

UNIT_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "ActiveEnterTimestamp",  # `@<seconds since the epoch>`: asked with --timestamp=unix
)


def rfc3339(moment: datetime) -> str:
    """`2026-12-05T10:15:03+00:00`: to the second, always with its offset."""
    return moment.isoformat(timespec="seconds")


def duration(seconds: float) -> str:
    """`42s`, `17m`, `3h05m`: an uptime at a glance."""
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def now() -> datetime:
    return datetime.now(UTC)


def unit_properties(host: PodmanHost, units: Sequence[str]) -> dict[str, dict[str, str]]:
    """Unit -> its UNIT_PROPERTIES; `UnreachableError` if systemd cannot be asked.

    A unit systemd does not know still gets its block (LoadState=not-found).
    """
    if not units:
        return {}
    properties = "--property=" + ",".join(UNIT_PROPERTIES)
    result = host.systemctl("show", "--timestamp=unix", properties, *units, check=False)
    if not result.ok:
        raise failure(result)
    blocks = [block for block in result.stdout.strip().split("\n\n") if block.strip()]
    found: dict[str, dict[str, str]] = {}
    for position, block in enumerate(blocks):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        unit = props.get("Id") or (units[position] if position < len(units) else "")
        found[unit] = props
    return found


def active_since(props: dict[str, str]) -> datetime | None:
    """When the unit last became active (its ActiveEnterTimestamp); None if it never did."""
    stamp = props.get("ActiveEnterTimestamp", "").removeprefix("@")
    if not stamp.isdigit() or int(stamp) == 0:
        return None
    return datetime.fromtimestamp(int(stamp), UTC)


@dataclass(frozen=True)
class ContainerFacts:
    """One container as `podman container inspect` describes it."""

    name: str
    status: str  # Podman's State.Status: running, exited, created, ...
    health: str  # healthy, unhealthy, starting; "" without a health check
    started_at: datetime | None
    image: str  # the reference it was created from
    image_id: str
    image_digest: str  # sha256:... of the image's manifest

    def uptime_s(self, at: datetime) -> float | None:
        if self.status != "running" or self.started_at is None:
            return None
        return max(0.0, (at - self.started_at).total_seconds())


def container_facts(host: PodmanHost, names: Sequence[str]) -> dict[str, ContainerFacts]:
    """Name -> facts of those of `names` that exist (a missing container is no error)."""
    if not names:
        return {}
    result = host.podman("container", "inspect", *names, check=False)
    try:
        data = json.loads(result.stdout) if result.stdout.strip() else []
    except ValueError:
        raise failure(result) from None
    if not isinstance(data, list) or (not data and not _only_missing(result.stderr)):
        raise failure(result)
    facts = [_facts(item) for item in data if isinstance(item, dict)]
    return {fact.name: fact for fact in facts}


def _only_missing(stderr: str) -> bool:
    """Podman exits 125 when any name is missing, listing the others on stdout."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return all("no such container" in line.lower() for line in lines)


def _facts(item: dict[str, object]) -> ContainerFacts:
    state = item.get("State") if isinstance(item.get("State"), dict) else {}
    assert isinstance(state, dict)
    # Podman 4 calls it Health (as Docker does); some 4.x releases said Healthcheck.
    health = state.get("Health") or state.get("Healthcheck") or {}
    return ContainerFacts(
        name=str(item.get("Name", "")).lstrip("/"),
        status=str(state.get("Status", "")),
        health=str(health.get("Status", "")) if isinstance(health, dict) else "",
        started_at=parse_moment(str(state.get("StartedAt", ""))),
        image=str(item.get("ImageName", "")),
        image_id=str(item.get("Image", "")),
        image_digest=str(item.get("ImageDigest", "")),
    )


def parse_moment(text: str) -> datetime | None:
    """Podman's RFC 3339 times (nanoseconds, `Z` or an offset); None for its zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    head, dot, rest = text.partition(".")
    if dot:  # more than microseconds: keep six digits, then the offset
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[:digits][:6].ljust(6, "0") + rest[digits:]
        text = f"{head}.{rest}"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
