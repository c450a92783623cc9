"""A Debian 12 host for end-to-end tests: systemd as PID 1 and Debian's own Podman 4.3.1.

Podman 4.3 has no quadlet, so agentcage writes plain systemd services there
(cage/service_units.py). scripts/setup-host builds the image from bookworm's packages;
like the Podman 5 harness, it reads the host's images through an additional store. Units
are written on this side into `systemd_dir`, which systemd inside reads as
/usr/local/lib/systemd/system (an empty directory on its unit path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import Harness

PODMAN43_IMAGE = "localhost/agentcage-harness-podman43:latest"


@dataclass
class Podman43Harness(Harness):
    image: str = PODMAN43_IMAGE

    @property
    def systemd_dir(self) -> Path:
        return self.workdir / "units"

    def unit_files(self, pattern: str) -> list[Path]:
        return [*super().unit_files(pattern), *sorted(self.systemd_dir.glob(pattern))]

    def env(self) -> dict[str, str]:
        return {**super().env(), "AGENTCAGE_SYSTEMD_DIR": str(self.systemd_dir)}

    def unit_mounts(self) -> list[str]:
        self.systemd_dir.mkdir(parents=True, exist_ok=True)
        return [*super().unit_mounts(), "-v", f"{self.systemd_dir}:/usr/local/lib/systemd/system"]
