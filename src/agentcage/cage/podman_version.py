"""Which Podman a host has, and whether its systemd can read quadlets.

Quadlet, the systemd generator that turns `.container`/`.network` files into services,
came with Podman 4.4. Debian 12 ships Podman 4.3.1 without it: there agentcage writes
plain systemd services instead (service_units.py). A quadlet generator is only trusted
next to the Podman it came with, so a newer distribution's generator installed beside
Podman 4.3 (as scripts/setup-host does, for `quadlet -dryrun` checks only) never counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentcage.cage.podman import Runner
from agentcage.errors import PodmanError

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
# Where distributions install the generator (a link to /usr/libexec/podman/quadlet).
_GENERATOR_DIRS = ("/usr/lib/systemd", "/usr/local/lib/systemd", "/etc/systemd")
_SYSTEM_GENERATOR = "system-generators/podman-system-generator"
_USER_GENERATOR = "user-generators/podman-user-generator"
# Prints the first of its arguments that is an executable file (links followed).
_FIRST_EXECUTABLE = 'for p in "$@"; do [ -x "$p" ] && echo "$p" && break; done; true'


@dataclass(frozen=True, order=True)
class PodmanVersion:
    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @classmethod
    def parse(cls, text: str) -> PodmanVersion:
        """`podman version 4.3.1` (or just `4.3.1`, `5.4.2-dev`) -> PodmanVersion."""
        found = _VERSION.search(text)
        if found is None:
            raise PodmanError(
                f"cannot tell the Podman version from {text.strip()[:80]!r}",
                hint="check that `podman version` works (`agentcage host check` lists what is "
                "missing)",
            )
        return cls(int(found[1]), int(found[2]), int(found[3] or 0))


QUADLET_SINCE = PodmanVersion(4, 4)


def podman_version(runner: Runner) -> PodmanVersion:
    return PodmanVersion.parse(
        runner.run(["podman", "version", "--format", "{{.Client.Version}}"]).stdout
    )


def quadlet_generator(runner: Runner, *, rootless: bool) -> str | None:
    """The path of systemd's Podman generator for this scope, if one is installed."""
    name = _USER_GENERATOR if rootless else _SYSTEM_GENERATOR
    candidates = [f"{directory}/{name}" for directory in _GENERATOR_DIRS]
    found = runner.run(["sh", "-c", _FIRST_EXECUTABLE, "sh", *candidates], check=False)
    return found.stdout.strip() or None


def quadlet_available(runner: Runner, *, rootless: bool = False) -> bool:
    """True when Podman >= 4.4 and its quadlet generator is installed for this scope.

    False means cages get plain systemd services (service_units.py) instead of quadlets.
    """
    if podman_version(runner) < QUADLET_SINCE:
        return False
    return quadlet_generator(runner, rootless=rootless) is not None
