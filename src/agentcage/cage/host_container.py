"""`agentcage host start|stop|status`: systemd and Podman 5 in a privileged container.

For machines without systemd as PID 1 (containers, CI runners, WSL without systemd).
The container runs systemd as PID 1 with Podman 5 inside; cages run in it as they would
on a host with systemd. It sees:

    this machine                            the host container
    Podman's image store (read-only)   ->   /var/lib/shared (an additional image store)
    <data>/host/<name>/storage         ->   /var/lib/containers (cages' containers, secrets)
    <data>/host/<name>/quadlet         ->   /etc/containers/systemd (the cages' units)
    agentcage's config dir, --share    ->   the same paths (state, CA, audit, bind mounts)
    --share-ro                         ->   the same paths, read-only
    <data>/host/<name>/home            ->   /home (rootless users' storage needs a real fs)

Images are built outside with this machine's Podman and read through the shared store.
Storage and units stay when the container stops, so `host start` brings the cages back.
The price is isolation: the container is privileged, so an agent that escapes its own
container lands in one with root's access to this machine. Status output says so.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agentcage.cage.host_fixes import isolation_note
from agentcage.cage.host_image import HostImageRecipe, host_image
from agentcage.cage.host_target import (
    DEFAULT_NAME,
    SHARED_STORE,
    UNIT_DIR,
    HostTarget,
    forget_target,
    load_target,
    save_target,
)
from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import Runner, SubprocessRunner
from agentcage.cage.state import StateStore, config_home, data_home
from agentcage.errors import HostError

LABEL = "agentcage.host"
BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 90
# Sharing these would put this machine's system directories under the container's feet.
_SYSTEM_DIRS = tuple(
    Path(p) for p in ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/proc", "/sys")
) + tuple(Path(p) for p in ("/dev", "/run", "/var/lib/containers"))


@dataclass(frozen=True)
class HostContainerStatus:
    target: HostTarget | None
    state: str  # Podman's container state, "absent", or "" without a record
    systemd: str = ""
    podman: str = ""
    image_current: bool = True

    @property
    def running(self) -> bool:
        return self.state == "running"

    def isolation(self) -> str:
        return isolation_note(self.target.name) if self.target else ""

    def as_dict(self) -> dict[str, object]:
        target = self.target
        return {
            "container": target.name if target else None,
            "image": target.image if target else None,
            "image_current": self.image_current,
            "state": self.state or "none",
            "systemd": self.systemd,
            "podman": self.podman,
            "shares": [str(s) for s in target.shares] if target else [],
            "shares_readonly": [str(s) for s in target.readonly] if target else [],
            "units": str(target.quadlet_dir) if target else None,
            "isolation": self.isolation(),
        }


class HostContainers:
    """Starts, stops and describes the one host container this user's cages run in."""

    def __init__(
        self,
        runner: Runner | None = None,
        builder: ImageBuilder | None = None,
        config_dir: Path | None = None,
        data_dir: Path | None = None,
        progress: Callable[[str], None] = lambda _: None,
        euid: int | None = None,
        cgroup_root: Path = Path("/sys/fs/cgroup"),
    ) -> None:
        self.runner = runner or SubprocessRunner()
        self.builder = builder or ImageBuilder(self.runner, progress)
        self.config_dir = config_dir or config_home()
        self.data_dir = data_dir or data_home()
        self.progress = progress
        self.euid = os.geteuid() if euid is None else euid
        self.cgroup_root = cgroup_root

    def target(self) -> HostTarget | None:
        return load_target(self.config_dir)

    def cages(self) -> list[str]:
        return StateStore(self.config_dir).names()

    # --- start ---------------------------------------------------------------------------

    def start(
        self, name: str | None = None, shares: Sequence[Path] = (), readonly: Sequence[Path] = ()
    ) -> HostTarget:
        if self.euid != 0:
            raise HostError(
                "`agentcage host start` needs root: the host container is privileged",
                hint="run `sudo agentcage host start`, and cage commands as root too",
            )
        current = self.target()
        name = name or (current.name if current else DEFAULT_NAME)
        if current is not None and current.name != name and self.cages():
            raise HostError(
                f"your cages live in the host container {current.name}, not {name}",
                hint=f"`agentcage host start --name {current.name}`",
            )
        state = self._state(name)
        if state == "running":
            if current is not None and current.name == name:
                self._refuse_new_shares(current, [*shares, *readonly])
                self.progress(f"host container {name} is already running")
                return current
            raise HostError(f"a host container {name} runs but is not this user's")
        if state != "absent":
            self.runner.run(["podman", "rm", "-f", name])
        # Shares only grow: the cages inside may bind-mount from any of them.
        writable = self._shares([self.config_dir, *(current.shares if current else ()), *shares])
        readonly = tuple(
            path
            for path in self._shares([*(current.readonly if current else ()), *readonly])
            if path not in writable
        )
        self._cgroup_hybrid_fix()
        image = host_image(self.builder, HostImageRecipe.for_this_machine())
        graphroot = self.runner.run(
            ["podman", "info", "--format", "{{.Store.GraphRoot}}"]
        ).stdout.strip()
        target = HostTarget(name, image, self.data_dir / "host" / name, writable, readonly)
        for directory in (target.workdir.parent, target.workdir, target.storage_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in (target.quadlet_dir, target.home_dir):
            directory.mkdir(mode=0o755, exist_ok=True)
        mounts = [
            f"{graphroot}:{SHARED_STORE}:ro",
            f"{target.storage_dir}:/var/lib/containers",
            f"{target.quadlet_dir}:{UNIT_DIR}",
            f"{target.home_dir}:/home",
            *(f"{share}:{share}" for share in writable),
            *(f"{share}:{share}:ro" for share in readonly),
        ]
        self.progress(f"starting host container {name} ({image})")
        self.runner.run(
            [
                "podman", "run", "-d", "--name", name, "--label", f"{LABEL}=1",
                "--privileged", "--systemd=always", "--pull=never",
                "-e", "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
                *(arg for mount in mounts for arg in ("-v", mount)),
                image, "/usr/lib/systemd/systemd",
            ]
        )  # fmt: skip
        self._wait_for_boot(name)
        save_target(self.config_dir, target)
        return target

    def _refuse_new_shares(self, current: HostTarget, wanted: Sequence[Path]) -> None:
        """A running container's mounts are fixed: a new share would be silently missing."""
        missing = current.unshared(Path(p).resolve() for p in wanted)
        if missing:
            shown = " ".join(f"--share {p}" for p in missing)
            raise HostError(
                f"the host container {current.name} runs without {', '.join(map(str, missing))}"
                " shared, and mounts cannot be added to a running container",
                hint=f"`agentcage host stop && agentcage host start {shown}` (its cages "
                "stop and come back)",
            )

    def _shares(self, shares: Sequence[Path]) -> tuple[Path, ...]:
        self.config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        resolved: dict[Path, None] = {}
        for share in shares:
            path = Path(share).resolve()
            if not path.is_dir():
                raise HostError(f"--share {share}: not a directory")
            system = [s for s in _SYSTEM_DIRS if path == s or s in path.parents]
            if path == Path("/") or system:
                raise HostError(
                    f"--share {share}: refusing to share a system directory with the "
                    "host container",
                    hint="share the directories that hold your cages' files",
                )
            resolved[path] = None
        return tuple(resolved)

    def _cgroup_hybrid_fix(self) -> None:
        """crun (Podman 5's runtime) refuses a cgroup v1 host whose v2 tree lists hugetlb.

        Giving hugetlb its own v1 hierarchy empties that list; it lasts until reboot.
        """
        unified = self.cgroup_root / "unified" / "cgroup.controllers"
        try:
            listed = unified.read_text().split()
        except OSError:
            return
        target = self.cgroup_root / "hugetlb"
        if "hugetlb" not in listed or os.path.ismount(target):
            return
        self.progress(f"mounting the hugetlb cgroup at {target} (crun refuses hybrid hosts)")
        target.mkdir(exist_ok=True)
        self.runner.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", str(target)])

    def _wait_for_boot(self, name: str) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        state = ""
        while time.monotonic() < deadline:
            state = self._systemd(name)
            if state in ("running", "degraded"):
                return
            time.sleep(0.3)
        logs = self.runner.run(["podman", "logs", "--tail", "30", name], check=False)
        self.runner.run(["podman", "rm", "-f", name], check=False)
        raise HostError(
            f"systemd in the host container {name} did not boot ({state or 'no answer'}):\n"
            + (logs.stdout + logs.stderr).strip()[-2000:],
            hint="`agentcage host check` shows what this machine lacks",
        )

    # --- stop ----------------------------------------------------------------------------

    def stop(self, forget: bool = False) -> HostTarget:
        target = self.target()
        if target is None:
            raise HostError("no host container is recorded", hint="`agentcage host status`")
        cages = self.cages()
        if forget and cages:
            raise HostError(
                f"cages still live in the host container {target.name}: {', '.join(cages)}",
                hint="destroy them first (`agentcage cage destroy NAME`), or stop without "
                "--forget to keep them for the next `host start`",
            )
        if self._state(target.name) != "absent":
            # SIGRTMIN+3 (the image's STOPSIGNAL) makes systemd stop every cage cleanly.
            self.runner.run(["podman", "stop", "-t", str(STOP_TIMEOUT), target.name], check=False)
            self.runner.run(["podman", "rm", "-f", target.name])
        if forget:
            shutil.rmtree(target.workdir)
            forget_target(self.config_dir)
        return target

    # --- status --------------------------------------------------------------------------

    def status(self) -> HostContainerStatus:
        target = self.target()
        if target is None:
            return HostContainerStatus(None, "")
        state = self._state(target.name)
        current = target.image == HostImageRecipe.for_this_machine().ref()
        if state != "running":
            return HostContainerStatus(target, state, image_current=current)
        version = self.runner.run(
            ["podman", "exec", target.name, "podman", "version", "--format", "{{.Client.Version}}"],
            check=False,
        ).stdout.strip()
        return HostContainerStatus(target, state, self._systemd(target.name), version, current)

    def _systemd(self, name: str) -> str:
        argv = ["podman", "exec", name, "systemctl", "is-system-running"]
        return self.runner.run(argv, check=False).stdout.strip()

    def _state(self, name: str) -> str:
        """Podman's state of container NAME; "absent" if none; refuses one not ours."""
        template = '{{.State.Status}} {{index .Config.Labels "' + LABEL + '"}}'
        result = self.runner.run(
            ["podman", "container", "inspect", "--format", template, name], check=False
        )
        if not result.ok:
            return "absent"
        state, _, label = result.stdout.strip().partition(" ")
        if label != "1":
            raise HostError(
                f"a container named {name} exists and is not an agentcage host container",
                hint="choose another name with `agentcage host start --name NAME`",
            )
        return state
