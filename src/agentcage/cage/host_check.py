"""`agentcage host check`: can this machine (or its host container) run cages?

Each check is a small function that looks at the host through `HostProbe` (files are
read and commands run through the host's runner, so the same checks work on this
machine and, via `podman exec`, inside the host container) and returns one `HostFinding`.
A failing finding names the fix for Debian/Ubuntu and Fedora; fix texts live in
`cage/host_fixes.py`. `cage create` and `cage update` run `require_ready` before they
build or pull anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agentcage.cage import host_fixes as fixes
from agentcage.cage.host_target import SHARED_STORE
from agentcage.cage.podman import Completed, PodmanHost, Runner
from agentcage.cage.state import config_home
from agentcage.cage.steering_entry import SEARCH_PATH
from agentcage.config.schema import CageConfig
from agentcage.errors import AgentcageError, HostError

Status = Literal["pass", "warn", "fail"]
# Quadlet, the generator cages' units are written for, came with Podman 4.4.
QUADLET_SINCE = (4, 4)
CONTROLLERS = ("cpu", "memory", "pids")
GIB = 1 << 30
DISK_FAIL = 2 * GIB
DISK_WARN = 5 * GIB
HELPER_DIRS = ("/usr/libexec/podman", "/usr/lib/podman", "/usr/local/libexec/podman")
GENERATORS = {
    False: "/usr/lib/systemd/system-generators/podman-system-generator",
    True: "/usr/lib/systemd/user-generators/podman-user-generator",
}


@dataclass(frozen=True)
class HostFinding:
    name: str
    status: Status
    detail: str
    fixes: tuple[tuple[str, str], ...] = field(default=())

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fixes": dict(self.fixes),
        }


@dataclass(frozen=True)
class HostProbe:
    """Looks at a host through its runner; never raises for what it cannot see."""

    runner: Runner
    rootless: bool

    def run(self, *argv: str) -> Completed:
        try:
            return self.runner.run(argv, check=False, timeout=60)
        except AgentcageError as exc:  # command missing, timed out
            return Completed(tuple(argv), 127, "", exc.message)

    def read(self, path: str) -> str | None:
        result = self.run("cat", "--", path)
        return result.stdout if result.ok else None

    def first_executable(self, paths: Sequence[str]) -> str | None:
        script = 'for p; do if [ -x "$p" ]; then echo "$p"; exit 0; fi; done; exit 1'
        result = self.run("sh", "-c", script, "sh", *paths)
        return result.stdout.strip() or None if result.ok else None

    def which(self, name: str) -> str | None:
        result = self.run("sh", "-c", 'command -v "$1"', "sh", name)
        return result.stdout.strip() or None if result.ok else None

    def free_bytes(self, path: str) -> int | None:
        result = self.run("stat", "-f", "-c", "%a %S", path)
        try:
            blocks, size = result.stdout.split()
            return int(blocks) * int(size)
        except ValueError:
            return None

    def user(self) -> tuple[str, int]:
        name, uid = self.run("id", "-un").stdout.strip(), self.run("id", "-u").stdout.strip()
        return name, int(uid) if uid.isdigit() else -1


def check_systemd(probe: HostProbe, host: PodmanHost) -> HostFinding:
    box = host.host_container
    comm = probe.read("/proc/1/comm")
    if comm is None and box is not None:
        return HostFinding(
            "systemd",
            "fail",
            f"the host container {box.name} is not running",
            fixes.START_HOST_CONTAINER,
        )
    if (comm or "").strip() != "systemd":
        return HostFinding(
            "systemd",
            "fail",
            f"PID 1 is {(comm or '?').strip()!r}, not systemd: cages run as systemd units",
            fixes.NO_SYSTEMD,
        )
    scope = ("--user",) if probe.rootless else ()
    state = probe.run("systemctl", *scope, "is-system-running").stdout.strip()
    where = "on this machine"
    if box is not None:
        where = f"in the host container {box.name}"
    elif host.remote:
        where = f"on host target {host.remote}"
    elif host.prefix:
        where = f"behind `{' '.join(host.prefix)}`"
    if state in ("running", "degraded"):
        return HostFinding("systemd", "pass", f"systemd is PID 1 {where} ({state})")
    if probe.rootless and state in ("", "offline"):
        return HostFinding(
            "systemd",
            "fail",
            f"no systemd user manager for this user ({state or 'unreachable'})",
            fixes.USER_MANAGER,
        )
    # Starting, stopping or in maintenance: units may still start; say so and go on.
    return HostFinding("systemd", "warn", f"systemd is PID 1 {where} but {state or 'unreachable'}")


@dataclass(frozen=True)
class PodmanFacts:
    """What one `podman info` says (it costs about a second here: ask it once)."""

    version: tuple[int, ...] | None
    backend: str = ""
    graphroot: str = ""
    error: str = ""  # why `podman info` said nothing


_INFO = "{{.Version.Version}}|{{.Host.NetworkBackend}}|{{.Store.GraphRoot}}"


def podman_facts(probe: HostProbe) -> PodmanFacts:
    result = probe.run("podman", "info", "--format", _INFO)
    parts = result.stdout.strip().split("|")
    if result.ok and len(parts) == 3:
        return PodmanFacts(_version(parts[0]), parts[1], parts[2])
    # A broken store fails `podman info`, not `podman version`: Podman is there.
    text = probe.run("podman", "version", "--format", "{{.Client.Version}}").stdout
    return PodmanFacts(_version(text), error=result.stderr.strip()[-200:] or "podman info failed")


def _version(text: str) -> tuple[int, ...] | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    return tuple(int(part or 0) for part in match.groups()) if match else None


def check_podman(probe: HostProbe, version: tuple[int, ...] | None) -> HostFinding:
    if version is None:
        return HostFinding("podman", "fail", "podman not found", fixes.INSTALL_PODMAN)
    return HostFinding("podman", "pass", f"Podman {_dotted(version)}")


def check_quadlet(probe: HostProbe, version: tuple[int, ...] | None) -> HostFinding:
    """Quadlet or not, cages run: without it they get plain services (service_units.py)."""
    if version is None:
        return HostFinding("quadlet", "fail", "no Podman, so no quadlet", fixes.INSTALL_PODMAN)
    if version[:2] < QUADLET_SINCE:
        return HostFinding(
            "quadlet",
            "warn",
            f"no quadlet in Podman {_dotted(version)} (it came with 4.4): cages run as plain "
            "systemd services agentcage writes",
        )
    generator = GENERATORS[probe.rootless]
    if probe.first_executable([generator]) is None:
        return HostFinding(
            "quadlet",
            "warn",
            f"{generator} is missing: cages run as plain systemd services agentcage writes",
            fixes.REINSTALL_PODMAN,
        )
    return HostFinding("quadlet", "pass", f"quadlet generator {generator}")


def check_cgroups(probe: HostProbe) -> HostFinding:
    root = probe.read("/sys/fs/cgroup/cgroup.controllers")
    if root is None:
        detail = "cgroup v1: " + (
            "rootless Podman cannot enforce the cages' memory, CPU and pids limits"
            if probe.rootless
            else "limits work, but cgroup v2 is what Podman is built for"
        )
        return HostFinding("cgroups", "warn", detail, fixes.CGROUP_V2)
    path, where = "/sys/fs/cgroup/cgroup.controllers", "the root cgroup"
    if probe.rootless:
        _, uid = probe.user()
        path = f"/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service/cgroup.controllers"
        where = f"user@{uid}.service"
    available = set((probe.read(path) or "").split())
    missing = [c for c in CONTROLLERS if c not in available]
    if missing:
        return HostFinding(
            "cgroups",
            "fail",
            f"cgroup v2, but {where} lacks the {', '.join(missing)} controller(s)",
            fixes.DELEGATE if probe.rootless else fixes.KERNEL_CONTROLLERS,
        )
    return HostFinding("cgroups", "pass", f"cgroup v2; {where} has {' '.join(CONTROLLERS)}")


def check_rootless(probe: HostProbe) -> HostFinding:
    if not probe.rootless:
        return HostFinding("rootless", "pass", "rootful: no sub-UIDs needed")
    user, uid = probe.user()
    missing = [
        f for f in ("/etc/subuid", "/etc/subgid") if not _has_range(probe.read(f), user, uid)
    ]
    if missing:
        return HostFinding(
            "rootless",
            "fail",
            f"no range of 65536 ids for {user} in {' and '.join(missing)}",
            fixes.subids(user),
        )
    tools = [t for t in ("newuidmap", "newgidmap") if probe.which(t) is None]
    if tools:
        return HostFinding("rootless", "fail", f"{' and '.join(tools)} missing", fixes.UIDMAP)
    return HostFinding("rootless", "pass", f"{user} has sub-UIDs and sub-GIDs; newuidmap found")


def _has_range(text: str | None, user: str, uid: int) -> bool:
    for line in (text or "").splitlines():
        parts = line.strip().split(":")
        owner = len(parts) == 3 and parts[0] in (user, str(uid))
        if owner and parts[2].isdigit() and int(parts[2]) >= 65536:
            return True
    return False


def check_netavark(facts: PodmanFacts) -> HostFinding:
    if facts.backend == "netavark":
        return HostFinding("netavark", "pass", "network backend netavark")
    why = facts.backend or facts.error
    return HostFinding(
        "netavark", "fail", f"network backend is not netavark: {why}", fixes.NETAVARK
    )


def check_aardvark(probe: HostProbe) -> HostFinding:
    found = probe.first_executable([f"{d}/aardvark-dns" for d in HELPER_DIRS])
    if found is None:
        return HostFinding("aardvark-dns", "fail", "aardvark-dns not found", fixes.NETAVARK)
    return HostFinding("aardvark-dns", "pass", found)


def check_nsenter(probe: HostProbe) -> HostFinding:
    # Default deny's setup enters the cage's namespaces with it (steering_entry.py), from
    # the PATH that setup gives itself.
    found = probe.first_executable([f"{d}/nsenter" for d in SEARCH_PATH.split(":")])
    if found is None:
        return HostFinding(
            "nsenter",
            "fail",
            "nsenter not found: default deny could not be set up (the cage would stay closed)",
            fixes.UTIL_LINUX,
        )
    return HostFinding("nsenter", "pass", found)


def check_tun(probe: HostProbe) -> HostFinding:
    present = probe.run("test", "-c", "/dev/net/tun").ok
    if not probe.rootless:
        detail = "present" if present else "absent; only rootless Podman needs it"
        return HostFinding("tun", "pass", f"/dev/net/tun {detail}")
    if not present:
        return HostFinding("tun", "fail", "/dev/net/tun is missing", fixes.TUN_MISSING)
    if not probe.run("test", "-r", "/dev/net/tun", "-a", "-w", "/dev/net/tun").ok:
        return HostFinding("tun", "fail", "/dev/net/tun is not read-writable", fixes.TUN_MODE)
    return HostFinding("tun", "pass", "/dev/net/tun read-writable (rootless networking)")


def check_disk(probe: HostProbe, host: PodmanHost, facts: PodmanFacts) -> HostFinding:
    paths = [facts.graphroot or "/var/lib/containers/storage"]
    if host.host_container is not None:
        paths.append(SHARED_STORE)  # this machine's image store, where images are built
    worst: tuple[int, str] | None = None
    for path in paths:
        free = probe.free_bytes(path)
        if free is not None and (worst is None or free < worst[0]):
            worst = (free, path)
    if worst is None:
        return HostFinding("disk", "warn", f"could not measure free space at {paths[0]}")
    free, path = worst
    detail = f"{free / GIB:.1f} GiB free at {path}"
    if free < DISK_FAIL:
        return HostFinding("disk", "fail", f"{detail}; images need 2 GiB", fixes.disk(path))
    if free < DISK_WARN:
        return HostFinding("disk", "warn", f"{detail}; 5 GiB or more recommended", fixes.disk(path))
    return HostFinding("disk", "pass", detail)


def check_isolation(host: PodmanHost) -> HostFinding | None:
    box = host.host_container
    if box is not None:
        return HostFinding("isolation", "warn", fixes.isolation_note(box.name))
    if host.remote:
        return HostFinding("isolation", "pass", f"cages run on host target {host.remote}")
    if host.prefix:
        return HostFinding("isolation", "warn", f"cages run through `{' '.join(host.prefix)}`")
    return None


def check_shares(host: PodmanHost, config: CageConfig) -> HostFinding | None:
    box = host.host_container
    if box is None:
        return None
    unseen = box.unshared(Path(mount.host) for mount in config.container.bind_mounts)
    if not unseen:
        return HostFinding("shares", "pass", f"{box.name} sees every bind mount of the cage")
    listed = ", ".join(str(p) for p in unseen)
    shared = [s for s in box.shares if s != config_home()]  # always shared anyway
    return HostFinding(
        "shares", "fail", f"{box.name} cannot see {listed}", fixes.share(shared, unseen)
    )


def run_checks(host: PodmanHost, config: CageConfig | None = None) -> list[HostFinding]:
    """Every check, against where cages of `host` run; `config` adds the cage's own."""
    probe = HostProbe(host.runner, host.rootless)
    systemd = check_systemd(probe, host)
    findings = [systemd]
    if systemd.failed and host.host_container is not None:
        checks: list[Callable[[], HostFinding | None]] = []  # nothing else is reachable
    else:
        facts = podman_facts(probe)
        version = facts.version
        checks = [
            lambda: check_podman(probe, version),
            lambda: check_quadlet(probe, version),
            lambda: check_cgroups(probe),
            lambda: check_rootless(probe),
            lambda: check_netavark(facts),
            lambda: check_aardvark(probe),
            lambda: check_nsenter(probe),
            lambda: check_tun(probe),
            lambda: check_disk(probe, host, facts),
        ]
    if config is not None:
        checks.append(lambda: check_shares(host, config))
    checks.append(lambda: check_isolation(host))
    # Each check is a command or two where the cages run (through `podman exec` when that
    # is a host container, ~0.1 s each): asked all at once, they cost one wait, not ten.
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        findings += [f for f in pool.map(lambda check: check(), checks) if f is not None]
    return findings


def render(findings: Sequence[HostFinding], only_problems: bool = False) -> str:
    lines = []
    for f in findings:
        if only_problems and f.status == "pass":
            continue
        lines.append(f"[{f.status}] {f.name}: {f.detail}")
        lines += [f"       {label}: {text}" for label, text in f.fixes if f.status != "pass"]
    return "\n".join(lines)


def require_ready(
    host: PodmanHost, config: CageConfig | None = None, progress: Callable[[str], None] = print
) -> None:
    """Raise `HostError` naming every failing item and its fix; report the warnings."""
    require(run_checks(host, config), progress)


def require_config_ready(
    host: PodmanHost, config: CageConfig, progress: Callable[[str], None] = print
) -> None:
    """`require_ready` for the checks of `config` alone (no command runs): for a host whose
    own checks passed a moment ago (host_ready.py)."""
    require([f for f in [check_shares(host, config)] if f is not None], progress)


def require(findings: Sequence[HostFinding], progress: Callable[[str], None]) -> None:
    failed = [f for f in findings if f.failed]
    if failed:
        raise HostError(
            "this machine cannot run cages yet:\n" + render(failed),
            hint="`agentcage host check` lists every item",
        )
    for finding in findings:
        if finding.status == "warn":
            progress(f"warning: {finding.name}: {finding.detail}")


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)
