"""A remote Linux host for end-to-end runs: systemd, Podman 5 and sshd, reached over SSH only.

The container is the host container's image (cage/host_image.py) with openssh-server
added, published on a loopback port. Unlike `Harness`, it shares neither agentcage's
state directory, nor a unit directory, nor this machine's image store: agentcage reaches
it as a user reaches another machine, `agentcage host add NAME ssh://root@127.0.0.1:PORT
--identity KEY`, and every cage command goes there because AGENTCAGE_HOST names it. Unit
files, state files and images travel over SSH. The repository, this Python and the
shared directory are mounted so that the fake internet and the cage's test mounts (which
name paths on the target) exist there.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from agentcage.cage.host_image import HOST_PACKAGES, HostImageRecipe, host_image
from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import SubprocessRunner
from agentcage.cage.ssh_target import socket_dir
from tests.e2e.harness import BUILD_ENV, REPO, Harness, run

SSHD_IMAGE = "localhost/agentcage-host-sshd"
TARGET = "e2e-remote"
# What would make agentcage ignore the SSH target.
_OVERRIDES = ("AGENTCAGE_SYSTEMD_EXEC", "AGENTCAGE_QUADLET_DIR", "AGENTCAGE_SYSTEMD_DIR")
REMOTE_STATE = Path("/root/.local/share/agentcage/cages")


def sshd_image() -> str:
    """The host image plus openssh-server (built from Debian packages when missing)."""
    recipe = HostImageRecipe.for_this_machine()
    recipe = replace(recipe, packages=(*HOST_PACKAGES, "openssh-server"), image=SSHD_IMAGE)
    builder = ImageBuilder(SubprocessRunner(env=BUILD_ENV), lambda line: print(line))
    return host_image(builder, recipe)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SshHarness(Harness):
    port: int = 0

    @property
    def key(self) -> Path:
        return self.workdir / "id_ed25519"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in BUILD_ENV.items() if k not in _OVERRIDES}
        return {
            **env,
            "XDG_CONFIG_HOME": str(self.config_home),
            "AGENTCAGE_IMAGE_BASE": "debian",
            "AGENTCAGE_HOST": TARGET,
        }

    def unreachable(self) -> dict[str, str | None]:
        raise NotImplementedError("not used with an SSH target")

    def unit_files(self, pattern: str) -> list[Path]:
        listed = self.exec(
            "sh", "-c", f"ls -d /etc/containers/systemd/{pattern} 2>/dev/null || true"
        )
        return [Path(line) for line in listed.split()]

    def audit_text(self, cage: str, role: str) -> str:
        return self.exec("cat", str(REMOTE_STATE / cage / "audit" / role / f"{role}.jsonl"))

    def shell(self, command: str) -> list[str]:
        """The argv that runs one shell command line on the target, stdin passed on."""
        return ["podman", "exec", "-i", self.name, "sh", "-c", command]

    def provide_image(self, ref: str) -> None:
        """Load an image built here into the target's own store (it has no shared one)."""
        exists = self.shell(f"podman image exists {shlex.quote(ref)}")
        if subprocess.run(exists, capture_output=True).returncode == 0:
            return
        save = subprocess.Popen(["podman", "save", ref], stdout=subprocess.PIPE)
        subprocess.run(
            self.shell("podman load -q"), stdin=save.stdout, check=True, capture_output=True
        )
        save.wait()

    def start(self) -> None:
        for directory in (self.config_home, self.shared):
            directory.mkdir(parents=True, exist_ok=True)
        self.shared.chmod(0o755)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)])
        self.boot()
        address = f"ssh://root@127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            added = self.agentcage("host", "add", TARGET, address, "--identity", str(self.key))
            if added.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # sshd may still be starting
        if added.returncode != 0:
            raise AssertionError(f"agentcage host add failed:\n{added.stderr}")

    def boot(self) -> None:
        """Start the target with sshd on 127.0.0.1:`port` taking `key`."""
        self.image = sshd_image()
        for directory in (self.workdir / "s", self.workdir / "home"):
            directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        python_prefix = Path(sys.base_prefix).resolve()
        run(
            [
                "podman", "run", "-d", "--name", self.name, "--privileged", "--systemd=always",
                "-e", "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
                "-p", f"127.0.0.1:{self.port}:22",
                "-v", f"{self.workdir / 's'}:/var/lib/containers",
                "-v", f"{REPO}:{REPO}:ro",
                "-v", f"{python_prefix}:{python_prefix}:ro",
                "-v", f"{self.shared}:{self.shared}",
                "-v", f"{self.workdir / 'home'}:/home",
                self.image, "/usr/lib/systemd/systemd",
            ]
        )  # fmt: skip
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            state = self.exec("systemctl", "is-system-running", check=False).strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"systemd in {self.name} did not boot: {state}")
        public = self.key.with_suffix(".pub").read_text()
        install = (
            "mkdir -p -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && "
            "chmod 600 /root/.ssh/authorized_keys && systemctl start ssh.service"
        )
        subprocess.run(
            self.shell(install), input=public, text=True, check=True, capture_output=True
        )

    def close_connection(self) -> None:
        """End the ssh master connection (it would live on for its ControlPersist)."""
        control = socket_dir() / "%C"
        run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={control}", "-p", str(self.port),
             "root@127.0.0.1"],
            check=False,
        )  # fmt: skip

    def freeze(self) -> None:
        """The target stops answering, its connections left open (`thaw` undoes it)."""
        run(["podman", "pause", self.name])

    def thaw(self) -> None:
        run(["podman", "unpause", self.name])

    def stop(self) -> None:
        self.close_connection()
        super().stop()
