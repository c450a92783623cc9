"""A host for end-to-end runs made the way a user without systemd makes one: `host start`.

`Harness` starts its container itself and points agentcage at it with AGENTCAGE_SYSTEMD_EXEC
and AGENTCAGE_QUADLET_DIR (standing in for a machine with systemd as PID 1). This one runs
`agentcage host start` instead and passes agentcage nothing but its XDG directories: the
record `host start` writes is what every later cage command finds, as for a user. The
repository and this Python are shared read-only (cages bind-mount test files from them,
the fake internet runs this venv), the shared directory read-write. Teardown is the user's
too: `host stop --forget`, which refuses while a cage is left (the caller destroys first).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import BUILD_ENV, REPO, Harness, run

# What would make agentcage ignore the record `host start` wrote.
_OVERRIDES = ("AGENTCAGE_SYSTEMD_EXEC", "AGENTCAGE_QUADLET_DIR", "AGENTCAGE_SYSTEMD_DIR")


@dataclass
class HostStartHarness(Harness):
    @property
    def data_home(self) -> Path:
        return self.workdir / "data"

    @property
    def quadlet_dir(self) -> Path:
        return self.data_home / "agentcage" / "host" / self.name / "quadlet"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in BUILD_ENV.items() if k not in _OVERRIDES}
        return {
            **env,
            "XDG_CONFIG_HOME": str(self.config_home),
            "XDG_DATA_HOME": str(self.data_home),
            "AGENTCAGE_IMAGE_BASE": "debian",
        }

    def unreachable(self) -> dict[str, str | None]:
        # As if the recorded host container were gone; the session's own keeps running.
        return {
            "AGENTCAGE_SYSTEMD_EXEC": f"podman exec -i {self.name}-gone",
            "AGENTCAGE_QUADLET_DIR": str(self.quadlet_dir),
        }

    def start(self) -> None:
        for directory in (self.config_home, self.shared):
            directory.mkdir(parents=True, exist_ok=True)
        self.shared.chmod(0o755)  # rootless users in the container read configs from here
        python_prefix = Path(sys.base_prefix).resolve()
        started = self.agentcage(
            "host", "start", "--name", self.name, "--share", str(self.shared),
            "--share-ro", str(REPO), "--share-ro", str(python_prefix),
        )  # fmt: skip
        if started.returncode != 0:
            raise AssertionError(f"agentcage host start failed:\n{started.stderr}")

    @property
    def record(self) -> Path:
        return self.config_home / "agentcage" / "host.json"

    def stop(self) -> None:
        if self.record.exists():  # else the caller ran `host stop --forget` itself
            forgotten = self.agentcage("host", "stop", "--forget")
            if forgotten.returncode != 0:  # a cage was left behind by a failed test
                sys.stderr.write(f"host stop --forget: {forgotten.stderr}\n")
        # Whatever a failed run left: the container, root-owned files of nested containers.
        subprocess.run(["podman", "rm", "-f", "-t", "0", self.name], capture_output=True)
        run(["rm", "-rf", str(self.workdir)], check=False)
