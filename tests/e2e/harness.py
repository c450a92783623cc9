"""A real systemd with Podman 5, in a privileged container, for end-to-end cage tests.

The host has no systemd as PID 1 and Podman 4.3 has no quadlets, so tests deploy cages
into this harness (built by scripts/setup-host). It reads the host's images through an
additional read-only image store; the repository, the cage state directory and the
quadlet directory are bind-mounted at the same paths, so `agentcage` runs on the host
and reaches the harness with AGENTCAGE_SYSTEMD_EXEC="podman exec -i NAME".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE = "localhost/agentcage-harness:latest"
REPO = Path(__file__).resolve().parents[2]


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 600, **kw: object) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return str(proc.stdout)


@dataclass
class Harness:
    name: str
    workdir: Path

    @property
    def config_home(self) -> Path:
        return self.workdir / "config"

    @property
    def quadlet_dir(self) -> Path:
        return self.workdir / "quadlet"

    @property
    def shared(self) -> Path:
        """Bind-mounted at the same path inside: logs, certificates, configs."""
        return self.workdir / "shared"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "XDG_CONFIG_HOME": str(self.config_home),
            "AGENTCAGE_SYSTEMD_EXEC": f"podman exec -i {self.name}",
            "AGENTCAGE_QUADLET_DIR": str(self.quadlet_dir),
            "AGENTCAGE_IMAGE_BASE": "debian",
        }

    def exec(self, *argv: str, check: bool = True, timeout: float = 600) -> str:
        return run(["podman", "exec", self.name, *argv], check=check, timeout=timeout)

    def agentcage(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO / ".venv" / "bin" / "agentcage"), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            input=input,
            timeout=900,
        )

    def start(self) -> None:
        if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
            raise AssertionError(f"{IMAGE} is missing: run `sudo scripts/setup-host` first")
        for directory in (self.config_home, self.quadlet_dir, self.shared, self.workdir / "s"):
            directory.mkdir(parents=True, exist_ok=True)
        python_prefix = Path(sys.base_prefix).resolve()
        run(
            [
                "podman", "run", "-d", "--name", self.name, "--privileged", "--systemd=always",
                "-e", "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
                "-v", "/var/lib/containers/storage:/var/lib/shared:ro",
                "-v", f"{self.workdir / 's'}:/var/lib/containers",
                "-v", f"{REPO}:{REPO}:ro",
                "-v", f"{python_prefix}:{python_prefix}:ro",
                "-v", f"{self.config_home}:{self.config_home}",
                "-v", f"{self.shared}:{self.shared}",
                "-v", f"{self.quadlet_dir}:/etc/containers/systemd",
                IMAGE, "/usr/lib/systemd/systemd",
            ]
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.exec("systemctl", "is-system-running", check=False).strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.3)
        raise AssertionError(f"systemd in {self.name} did not boot: {state}")

    def stop(self) -> None:
        run(["podman", "rm", "-f", "-t", "0", self.name], check=False)
        # Root-owned files from nested containers: remove through podman's own view.
        run(["rm", "-rf", str(self.workdir)], check=False)
