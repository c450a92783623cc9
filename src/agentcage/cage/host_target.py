"""Where cages run when this machine has no systemd as PID 1: the recorded host container.

`agentcage host start` writes `host.json` in agentcage's config directory; while it is
there, every cage command drives systemd and Podman inside that container
(`podman exec -i NAME ...`) and writes units into a host directory the container mounts
at /etc/containers/systemd. `host stop` keeps the record, so cage commands keep pointing
at the stopped container (and say so) instead of silently falling back to this machine,
where none of its cages are; `host stop --forget` removes it.

Pure data and file access only: starting and stopping is `cage/host_container.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentcage.atomicfile import write_atomic
from agentcage.errors import StateError

RECORD = "host.json"
DEFAULT_NAME = "agentcage-host"
# Where the host container sees this machine's image store (read-only) and its own units.
SHARED_STORE = "/var/lib/shared"
UNIT_DIR = "/etc/containers/systemd"


@dataclass(frozen=True)
class HostTarget:
    """One host container: its name, image and what it shares with this machine."""

    name: str
    image: str
    # On this machine: Podman storage and units of the cages inside (kept across restarts).
    workdir: Path
    # Directories mounted at the same path inside; the state directory is always one.
    shares: tuple[Path, ...]
    # The same, mounted read-only (sources a cage only reads: a checkout, a Python).
    readonly: tuple[Path, ...] = ()

    @property
    def quadlet_dir(self) -> Path:
        return self.workdir / "quadlet"

    @property
    def storage_dir(self) -> Path:
        return self.workdir / "storage"

    @property
    def home_dir(self) -> Path:
        """/home inside: rootless Podman's overlay storage cannot sit on the overlay root."""
        return self.workdir / "home"

    @property
    def exec_prefix(self) -> tuple[str, ...]:
        return ("podman", "exec", "-i", self.name)

    def unshared(self, paths: Iterable[Path]) -> list[Path]:
        """The paths the container cannot see (bind-mount sources of a cage, say)."""
        seen = (*self.shares, *self.readonly)
        return [p for p in paths if not any(p == s or s in p.parents for s in seen)]

    def as_json(self) -> str:
        data = {
            "name": self.name,
            "image": self.image,
            "workdir": str(self.workdir),
            "shares": [str(s) for s in self.shares],
            "readonly": [str(s) for s in self.readonly],
        }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> HostTarget:
        data = json.loads(text)
        return cls(
            name=str(data["name"]),
            image=str(data["image"]),
            workdir=Path(data["workdir"]),
            shares=tuple(Path(s) for s in data["shares"]),
            readonly=tuple(Path(s) for s in data.get("readonly", ())),
        )


def load_target(config_dir: Path) -> HostTarget | None:
    path = config_dir / RECORD
    try:
        return HostTarget.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StateError(
            f"{path}: damaged host container record ({exc})",
            hint="`agentcage host stop --forget` removes it; `agentcage host start` writes it",
        ) from exc


def save_target(config_dir: Path, target: HostTarget) -> None:
    config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(config_dir / RECORD, target.as_json())


def forget_target(config_dir: Path) -> None:
    (config_dir / RECORD).unlink(missing_ok=True)
