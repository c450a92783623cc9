"""The zones DNS tunnel detection has blocked, kept across sidecar restarts.

A zone is blocked because an agent was caught tunnelling through it. Forgetting that
on a restart (`cage update`, a reboot, a crash) would reopen the tunnel until the
detector catches it again, a few queries later. So every block is written to a small
JSON file before it is reported, and the sidecar starts with the zones in it.

The file is replaced atomically. One that cannot be read or parsed stops the sidecar
(fail closed): silently starting without its zones would unblock them. Deleting the
file, then restarting the sidecar, unblocks everything.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentcage.atomicfile import write_atomic
from agentcage.dns.names import BadDomain, checked_domain
from agentcage.errors import DnsError

VERSION = 1


class BlockedZonesFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> set[str]:
        """The zones in the file; none if it does not exist yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return set()
        except OSError as exc:
            raise self._unusable(f"cannot be read: {exc.strerror}") from exc
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != VERSION:
                raise ValueError(f"expected a version {VERSION} object")
            zones = data["zones"]
            if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
                raise ValueError("'zones' must be a list of names")
            return {checked_domain(zone) for zone in zones}
        except (ValueError, KeyError, BadDomain) as exc:
            raise self._unusable(f"is not a blocked-zones file ({exc})") from exc

    def save(self, zones: set[str]) -> None:
        data = {"v": VERSION, "zones": sorted(zones)}
        try:
            write_atomic(self.path, json.dumps(data, indent=1) + "\n", 0o644)
        except OSError as exc:
            raise DnsError(
                f"cannot record blocked DNS zones in {self.path}: {exc.strerror}; "
                "stopping DNS (fail closed)",
                hint="make the directory writable for the DNS sidecar",
            ) from exc

    def _unusable(self, problem: str) -> DnsError:
        return DnsError(
            f"the blocked-zones file {self.path} {problem}; not starting DNS without "
            "the zones it holds (fail closed)",
            hint="fix the file, or delete it to unblock every zone",
        )
