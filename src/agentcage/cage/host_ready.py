"""Remembering, for a few minutes, that a host passed `host check` (cage create/update).

`host check` asks a dozen questions where the cages run (two of them `podman info` and
`podman version`, about a second each on the test machine); a loop that creates a cage
per task would ask them all every time. After a passing check, `create` records the
answers with a fingerprint of the host: the kernel's boot id, when its PID 1 started (a
restarted host container is a new one), and the size and time of the podman, systemctl
and container config files. The next `create` within `TTL` seconds asks for the
fingerprint only (one short command) and, if it matches, repeats the recorded warnings
instead of the checks. A failing check is never recorded, `agentcage host check` always
asks everything, and the checks of the cage's own config (bind mounts the host container
must see) run every time.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agentcage.cage.podman import PodmanHost
from agentcage.cage.state import StateStore, write_atomic

RECORD = "host-ready.json"
TTL = 600.0
# Prints nothing that changes while the same host runs on unchanged Podman and systemd.
FINGERPRINT = (
    "cat /proc/sys/kernel/random/boot_id; cut -d' ' -f22 /proc/1/stat; id -u; "
    'for f in "$(command -v podman)" "$(command -v systemctl)" /etc/containers/containers.conf '
    "/etc/containers/storage.conf; do stat -L -c '%n %s %Y' \"$f\" 2>/dev/null; done; true"
)


@dataclass(frozen=True)
class HostReady:
    fingerprint: str
    checked_at: float
    warnings: tuple[str, ...]  # as `require_ready` reported them
    quadlet: bool


def fingerprint(host: PodmanHost) -> str:
    """The host's fingerprint; "" when it cannot be taken (then nothing is remembered)."""
    result = host.runner.run(["sh", "-c", FINGERPRINT], check=False, timeout=30)
    lines = result.stdout.strip().splitlines()
    if not result.ok or len(lines) < 3:
        return ""
    return "\n".join([*host.prefix, *lines])


def recalled(store: StateStore, print_: str) -> HostReady | None:
    """The record for this fingerprint, if it is younger than TTL."""
    if not print_:
        return None
    try:
        data = json.loads(_path(store).read_text(encoding="utf-8"))
        ready = HostReady(
            str(data["fingerprint"]),
            float(data["checked_at"]),
            tuple(str(w) for w in data["warnings"]),
            bool(data["quadlet"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    fresh = 0 <= time.time() - ready.checked_at < TTL
    return ready if fresh and ready.fingerprint == print_ else None


def remember(store: StateStore, print_: str, warnings: list[str], quadlet: bool) -> None:
    if not print_:
        return
    ready = HostReady(print_, time.time(), tuple(warnings), quadlet)
    store.root.mkdir(parents=True, exist_ok=True)
    write_atomic(_path(store), json.dumps(asdict(ready)) + "\n", 0o600)


def forget(store: StateStore) -> None:
    _path(store).unlink(missing_ok=True)


def _path(store: StateStore) -> Path:
    return store.root / RECORD
