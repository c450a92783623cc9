"""A fake host for `host check`: files, executables and devices answered like a shell would.

`HostProbe` reads files with `cat`, finds executables with small `sh -c` scripts and tests
devices with `test`; this runner answers those from dictionaries and everything else from
`answers` like `RecordingRunner` (longest argv prefix wins), recording every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agentcage.cage.host_target import HostTarget
from agentcage.cage.podman import Completed, PodmanHost
from agentcage.errors import PodmanError
from tests.unit.cage.fakes import RecordingRunner


def done(stdout: str = "", returncode: int = 0, stderr: str = "") -> Completed:
    return Completed((), returncode, stdout, stderr)


@dataclass
class FakeHostRunner(RecordingRunner):
    files: dict[str, str] = field(default_factory=dict)
    executables: set[str] = field(default_factory=set)
    devices: dict[str, str] = field(default_factory=dict)  # path -> "rw" or "" (no access)
    missing_commands: set[str] = field(default_factory=set)

    def answer(self, key: tuple[str, ...]) -> Completed | PodmanError | None:
        if key[0] in self.missing_commands:
            return PodmanError(f"{key[0]}: command not found")
        if key[:2] == ("cat", "--"):
            text = self.files.get(key[2])
            return done(text) if text is not None else done("", 1, "No such file or directory")
        if key[:2] == ("sh", "-c") and "command -v" in key[2] and len(key) > 4:
            found = [p for p in self.executables if p.rsplit("/", 1)[-1] == key[4]]
            return done(found[0] + "\n") if found else done("", 1)
        if key[:2] == ("sh", "-c"):
            found = [p for p in key[4:] if p in self.executables]
            return done(found[0] + "\n") if found else done("", 1)
        if key[:2] == ("test", "-c"):
            return done("", 0 if key[2] in self.devices else 1)
        if key[:2] == ("test", "-r"):
            return done("", 0 if self.devices.get(key[2]) == "rw" else 1)
        return super().answer(key)


def info(version: str = "5.4.2", backend: str = "netavark") -> Completed:
    """`podman info`'s answer to host_check's one question (version|backend|graphroot)."""
    return done(f"{version}|{backend}|/var/lib/containers\n")


def healthy(rootless: bool = False) -> FakeHostRunner:
    """A Debian 13-like host with systemd, Podman 5 and cgroup v2."""
    user_cgroup = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers"
    return FakeHostRunner(
        files={
            "/proc/1/comm": "systemd\n",
            "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids\n",
            user_cgroup: "cpu memory pids\n",
            "/etc/subuid": "alice:100000:65536\n",
            "/etc/subgid": "alice:100000:65536\n",
        },
        executables={
            "/usr/lib/systemd/system-generators/podman-system-generator",
            "/usr/lib/systemd/user-generators/podman-user-generator",
            "/usr/lib/podman/aardvark-dns",
            "/usr/bin/nsenter",
            "/usr/bin/newuidmap",
            "/usr/bin/newgidmap",
        },
        devices={"/dev/net/tun": "rw"},
        answers={
            ("systemctl",): done("running\n"),
            ("podman", "version"): done("5.4.2\n"),
            ("podman", "info"): info(),
            ("stat", "-f"): done(f"{20 * 262144} 4096\n"),  # 20 GiB
            ("id", "-un"): done("alice\n" if rootless else "root\n"),
            ("id", "-u"): done("1000\n" if rootless else "0\n"),
        },
    )


def host_of(
    runner: FakeHostRunner,
    rootless: bool = False,
    prefix: tuple[str, ...] = (),
    host_container: HostTarget | None = None,
) -> PodmanHost:
    return PodmanHost(Path("/q"), rootless, runner, prefix=prefix, host_container=host_container)
