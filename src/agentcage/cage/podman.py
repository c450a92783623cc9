"""The only place agentcage starts processes: podman, systemctl and the image tools.

`Runner` is the seam. `SubprocessRunner` runs argv lists (never a shell) with a timeout
and turns failures into `PodmanError` carrying the command and the tail of its stderr.
Unit tests use a recording fake (tests/unit/cage/fakes.py) that answers from a script.

A runner may carry a prefix: with `AGENTCAGE_SYSTEMD_EXEC="podman exec -i NAME"` every
podman/systemctl command of a cage runs inside that container, which is how the tests
drive a real systemd + Podman 5 running in a privileged container.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agentcage.errors import PodmanError

DEFAULT_TIMEOUT = 300.0
STDERR_TAIL = 2000


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Completed: ...


def failure(result: Completed) -> PodmanError:
    tail = result.stderr.strip()[-STDERR_TAIL:] or result.stdout.strip()[-STDERR_TAIL:]
    return PodmanError(
        f"`{shlex.join(result.argv)}` failed (exit {result.returncode}): {tail or 'no output'}"
    )


def _not_found(command: str) -> PodmanError:
    return PodmanError(
        f"{command}: command not found",
        hint="run `sudo scripts/setup-host` to install Podman and its tools",
    )


@dataclass
class SubprocessRunner:
    prefix: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Completed:
        full = (*self.prefix, *argv)
        try:
            proc = subprocess.run(
                full,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=dict(self.env) if self.env is not None else None,
                check=False,
            )
        except FileNotFoundError as exc:
            raise _not_found(full[0]) from exc
        except subprocess.TimeoutExpired as exc:
            raise PodmanError(f"`{shlex.join(full)}` did not finish within {timeout:g}s") from exc
        result = Completed(full, proc.returncode, proc.stdout, proc.stderr)
        if check and not result.ok:
            raise failure(result)
        return result

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None]) -> None:
        """Run a long command, handing each output line to `on_line` (build progress)."""
        full = (*self.prefix, *argv)
        try:
            proc = subprocess.Popen(
                full,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=dict(self.env) if self.env is not None else None,
            )
        except FileNotFoundError as exc:
            raise _not_found(full[0]) from exc
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail = [*tail[-30:], line]
            on_line(line)
        if proc.wait() != 0:
            raise failure(Completed(full, proc.returncode, "", "\n".join(tail)))


@dataclass(frozen=True)
class PodmanHost:
    """How this machine runs cages: where units go and how to reach systemd and Podman."""

    quadlet_dir: Path
    rootless: bool
    runner: Runner
    prefix: tuple[str, ...] = ()
    # Rootless Podman on a cgroup v1 host cannot create cgroups (nor enforce limits).
    cgroups: bool = True
    # Where plain systemd services go when there is no quadlet (cage/service_units.py).
    systemd_dir: Path = Path("/etc/systemd/system")

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> PodmanHost:
        env = os.environ if environ is None else environ
        rootless = os.geteuid() != 0
        if env.get("AGENTCAGE_QUADLET_DIR"):
            quadlet_dir = Path(env["AGENTCAGE_QUADLET_DIR"])
        elif rootless:
            base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
            quadlet_dir = Path(base) / "containers" / "systemd"
        else:
            quadlet_dir = Path("/etc/containers/systemd")
        prefix = tuple(shlex.split(env.get("AGENTCAGE_SYSTEMD_EXEC", "")))
        cgroup_v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        cgroups = not (rootless and not cgroup_v2)
        systemd_dir = _systemd_dir(env, rootless)
        runner = SubprocessRunner(prefix=prefix)
        return cls(quadlet_dir, rootless, runner, prefix, cgroups, systemd_dir)

    def runner_prefix(self) -> tuple[str, ...]:
        """What runs a command where the cage's systemd and Podman are (often nothing)."""
        return self.prefix

    @property
    def wanted_by(self) -> str:
        return "default.target" if self.rootless else "multi-user.target"

    def systemctl(self, *args: str, check: bool = True) -> Completed:
        scope = ("--user",) if self.rootless else ()
        try:
            return self.runner.run(["systemctl", *scope, *args], check=check)
        except PodmanError as exc:
            if "not been booted with systemd" in exc.message or "Failed to connect to bus" in (
                exc.message
            ):
                raise PodmanError(
                    exc.message,
                    hint="cages run as systemd units: use a host with systemd as PID 1 (for "
                    "rootless, `loginctl enable-linger $USER`); docs/cages.md explains the "
                    "harness used where there is none",
                ) from exc
            raise

    def podman(self, *args: str, input: str | None = None, check: bool = True) -> Completed:
        return self.runner.run(["podman", *args], input=input, check=check)


def _systemd_dir(env: Mapping[str, str], rootless: bool) -> Path:
    if env.get("AGENTCAGE_SYSTEMD_DIR"):
        return Path(env["AGENTCAGE_SYSTEMD_DIR"])
    if rootless:
        return Path(env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")) / "systemd" / "user"
    return Path("/etc/systemd/system")
