"""The only place agentcage starts processes: podman, systemctl and the image tools.

`Runner` is the seam. `SubprocessRunner` runs argv lists (never a shell) with a timeout
and turns failures into `PodmanError` carrying the command and the tail of its stderr.
Unit tests use a recording fake (tests/unit/cage/fakes.py) that answers from a script.

A runner may carry a prefix: every podman/systemctl command of a cage then runs inside a
container. `agentcage host start` records one (`cage/host_target.py`) and `detect` picks
it up; `AGENTCAGE_SYSTEMD_EXEC="podman exec -i NAME"` overrides it (the e2e harness).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agentcage.cage.host_target import HostTarget, load_target
from agentcage.cage.state import config_home
from agentcage.errors import PodmanError, UnreachableError

if TYPE_CHECKING:
    from agentcage.cage.host_files import HostFiles

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

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None]) -> None: ...


def failure(result: Completed) -> PodmanError:
    tail = result.stderr.strip()[-STDERR_TAIL:] or result.stdout.strip()[-STDERR_TAIL:]
    return PodmanError(
        f"`{shlex.join(result.argv)}` failed (exit {result.returncode}): {tail or 'no output'}"
    )


def stderr_tail(result: Completed) -> str:
    """The end of what a failed command said, for an error message."""
    return result.stderr.strip()[-STDERR_TAIL:] or f"exit {result.returncode}"


# What systemctl, or the `podman exec` prefix in front of it, says when nothing can be asked.
_EXEC_GONE = ("no container with", "can only create exec sessions on running containers")
_UNREACHABLE = (
    "not been booted with systemd",
    "Failed to connect to bus",
    "Failed to connect to user scope bus",
    *_EXEC_GONE,
)


def unreachable(result: Completed) -> bool:
    """True if the command never reached systemd or Podman (as opposed to being refused)."""
    return any(marker in result.stderr for marker in _UNREACHABLE)


def _not_found(command: str) -> PodmanError:
    if command == "uv":
        hint = (
            "cage images are built with uv: `scripts/bootstrap` links it into .venv/bin "
            '(`export PATH="$PWD/.venv/bin:$PATH"`), or install uv '
            "(https://docs.astral.sh/uv/)"
        )
    else:
        hint = "run `sudo scripts/setup-host` to install Podman and its tools"
    return PodmanError(f"{command}: command not found", hint=hint)


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
    # The recorded host container the prefix reaches, if that is where cages run.
    host_container: HostTarget | None = None
    # Where plain systemd services go when there is no quadlet (cage/service_units.py).
    systemd_dir: Path = Path("/etc/systemd/system")
    # How unit and state files get where the containers run (host_files.py).
    files: HostFiles = field(default_factory=lambda: _local_files())
    # The host target's name and address when cages run on another machine (ssh_target.py).
    remote: str = ""

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> PodmanHost:
        env = os.environ if environ is None else environ
        rootless = os.geteuid() != 0
        prefix = tuple(shlex.split(env.get("AGENTCAGE_SYSTEMD_EXEC", "")))
        target = None if prefix else load_target(config_home(env))
        if env.get("AGENTCAGE_QUADLET_DIR"):
            quadlet_dir = Path(env["AGENTCAGE_QUADLET_DIR"])
        elif target is not None:
            quadlet_dir = target.quadlet_dir
        elif rootless:
            base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
            quadlet_dir = Path(base) / "containers" / "systemd"
        else:
            quadlet_dir = Path("/etc/containers/systemd")
        if target is not None:
            prefix = target.exec_prefix
        cgroup_v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        cgroups = not (rootless and not cgroup_v2)
        runner: Runner = SubprocessRunner(prefix=prefix)
        if prefix[:2] == ("podman", "exec"):
            # One `podman exec` for all of a command's calls (exec_session.py). Only there:
            # a prefix that re-parses its arguments (ssh) would mangle the session's loop.
            # Imported here: exec_session builds on this module's runner.
            from agentcage.cage.exec_session import SessionRunner

            runner = SessionRunner(prefix)
        systemd_dir = _systemd_dir(env, rootless)
        return cls(quadlet_dir, rootless, runner, prefix, cgroups, target, systemd_dir)

    def runner_prefix(self) -> tuple[str, ...]:
        """What runs a command where the cage's systemd and Podman are (often nothing)."""
        return self.prefix

    @property
    def wanted_by(self) -> str:
        return "default.target" if self.rootless else "multi-user.target"

    def systemctl(self, *args: str, check: bool = True) -> Completed:
        """Run systemctl; `UnreachableError` (even with check=False) if systemd cannot be asked."""
        scope = ("--user",) if self.rootless else ()
        result = self.runner.run(["systemctl", *scope, *args], check=False)
        if not result.ok and unreachable(result):
            if self.host_container is not None and any(m in result.stderr for m in _EXEC_GONE):
                hint = (
                    f"cages run in the host container {self.host_container.name}, which is "
                    "not running: `agentcage host start`"
                )
            else:
                hint = (
                    "cages run as systemd units: `agentcage host check` says what this "
                    "machine lacks; without systemd as PID 1, `agentcage host start` runs "
                    "them in a host container (docs/cages.md)"
                )
            raise UnreachableError(
                f"cannot reach systemd: {result.stderr.strip()[-STDERR_TAIL:]}", hint=hint
            )
        if check and not result.ok:
            raise failure(result)
        return result

    def podman(self, *args: str, input: str | None = None, check: bool = True) -> Completed:
        return self.runner.run(["podman", *args], input=input, check=check)


def _local_files() -> HostFiles:
    from agentcage.cage.host_files import LocalFiles  # host_files builds on this module

    return LocalFiles()


def _systemd_dir(env: Mapping[str, str], rootless: bool) -> Path:
    if env.get("AGENTCAGE_SYSTEMD_DIR"):
        return Path(env["AGENTCAGE_SYSTEMD_DIR"])
    if rootless:
        return Path(env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")) / "systemd" / "user"
    return Path("/etc/systemd/system")
