"""Inside the guest: a role's process confined as its container would be.

Standard library only, beside guest_agent.py (rootfs.py copies both in; the host never runs
this). The host sends a role's confinement with its argv (guest_roles.py renders both from
the cage's units); `confine` applies it in the forked child before exec, as root, in this
order: enter the role's network namespace (the agent's holds only a veth to the proxy and
the DNS sidecar), a private mount namespace, its bind mounts, tmpfs mounts, empty
read-only tmpfs over what it must not see (a sidecar on the guest's root), /proc (only its
own processes visible) and a minimal /dev, chroot into its root, then no_new_privs, an
empty capability bounding set, no supplementary groups, and its uid and gid. From root,
setuid to a non-zero uid clears the permitted, effective and ambient capabilities, so the
exec'd program starts with none. Any failure aborts the exec: the role does not run.

The agent's network namespace is made once per boot by `agent_network`: a veth pair whose
guest end holds the proxy's and the DNS sidecar's addresses, and whose other end, the
agent's only interface besides loopback, holds the agent's. There is no default route in
it and the guest does not forward, so the agent reaches those two listeners and nothing
else.
"""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 24, 38
_FLAGS = {"ro": _MS_RDONLY, "nosuid": _MS_NOSUID, "nodev": _MS_NODEV, "noexec": _MS_NOEXEC}
# Character devices of a container's /dev (major, minor), all 0666.
_DEVICES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
NETNS_DIR = Path("/run/netns")
GUEST_END = "cage0"
AGENT_END = "eth0"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, kind: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            kind.encode() if kind else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} on {target}",
    )


def _split_options(options: str) -> tuple[int, str]:
    """Mount flags, and the rest as the filesystem's own data (`size=16M,mode=1777`)."""
    flags, data = 0, []
    for option in filter(None, options.split(",")):
        if option in _FLAGS:
            flags |= _FLAGS[option]
        elif option != "rw":
            data.append(option)
    return flags, ",".join(data)


def _inside(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _bind(source: str, target: str, read_only: bool) -> None:
    if not os.path.exists(target):  # only possible on a writable tmpfs such as /run
        if os.path.isdir(source):
            os.makedirs(target)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            Path(target).touch()
    _mount(source, target, None, _MS_BIND | _MS_REC)
    flags = _MS_BIND | _MS_REMOUNT | _MS_NOSUID | _MS_NODEV
    _mount("none", target, None, flags | (_MS_RDONLY if read_only else 0))


def _dev(root: str) -> None:
    dev = _inside(root, "/dev")
    _mount("tmpfs", dev, "tmpfs", _MS_NOSUID | _MS_NOEXEC, "mode=0755,size=64k")
    for name, (major, minor) in _DEVICES.items():
        os.mknod(f"{dev}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(f"{dev}/{name}", 0o666)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, f"{dev}/{name}")
    os.symlink("/proc/self/fd/1", f"{dev}/stdout")
    os.symlink("/proc/self/fd/2", f"{dev}/stderr")
    os.mkdir(f"{dev}/shm")
    _mount("tmpfs", f"{dev}/shm", "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "size=16m")
    _mount("none", dev, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NOEXEC, "size=64k")


def confine(sandbox: dict[str, Any]) -> None:
    """Apply `sandbox` to this (forked, still root) process; see the module's docstring."""
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    if sandbox.get("netns"):
        fd = os.open(NETNS_DIR / str(sandbox["netns"]), os.O_RDONLY)
        _check(_libc.setns(fd, _CLONE_NEWNET), "setns")
        os.close(fd)
    _check(_libc.unshare(_CLONE_NEWNS), "unshare")
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE)
    root = str(sandbox.get("root") or "/")
    for source, target, read_only in sandbox.get("binds", []):
        _bind(str(source), _inside(root, str(target)), bool(read_only))
    for target, options in sandbox.get("tmpfs", []):
        flags, data = _split_options(str(options))
        _mount("tmpfs", _inside(root, str(target)), "tmpfs", flags | _MS_NOSUID, data)
    # What a container would not have: the other roles' state, the secrets drive. The
    # binds above already put this role's own parts at their targets.
    for path in sandbox.get("mask", []):
        if os.path.isdir(path):
            _mount("tmpfs", str(path), "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=4k")
    if root != "/":
        _mount(
            "proc",
            _inside(root, "/proc"),
            "proc",
            _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
            "hidepid=invisible",
        )
        _dev(root)
        os.chroot(root)
    os.chdir(str(sandbox.get("cwd") or "/"))
    if sandbox.get("no_new_privs", True):
        _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for cap in range(last_cap + 1):
        _check(_libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capability")
    uid, gid = int(sandbox["uid"]), int(sandbox["gid"])
    if uid == 0:
        raise PermissionError("a confined role never runs as root")
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def agent_network(message: dict[str, Any]) -> dict[str, Any]:
    """The agent's network namespace, once: `{"netns", "guest", ["A/N", ...], "agent": "A/N"}`."""
    name = str(message["netns"])
    if not name.isidentifier() or (NETNS_DIR / name).exists():
        return {"ok": False, "error": f"network namespace {name!r} exists or is not a plain name"}
    Path("/proc/sys/net/ipv4/ip_forward").write_text("0\n")  # never route between the two
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", GUEST_END, "type", "veth", "peer", "name", AGENT_END, "netns", name],
        *(["ip", "address", "add", str(a), "dev", GUEST_END] for a in message["guest"]),
        ["ip", "link", "set", GUEST_END, "up"],
        ["ip", "-n", name, "address", "add", str(message["agent"]), "dev", AGENT_END],
        ["ip", "-n", name, "link", "set", AGENT_END, "up"],
        ["ip", "-n", name, "link", "set", "lo", "up"],
    ]
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode:
            return {"ok": False, "error": f"{' '.join(argv)}: {done.stderr.strip()}"}
    return {"ok": True}


def sysctl_allowed(name: str, value: str) -> bool:
    """The sysctls a role may set in the guest's namespace: a low unprivileged-port floor,
    and forwarding off (the proxy's, docs/transparent.md), which only hardens."""
    if name == "net.ipv4.ip_unprivileged_port_start":
        return value.isdigit()
    return name == "net.ipv4.ip_forward" and value == "0"


def set_sysctl(message: dict[str, Any]) -> dict[str, Any]:
    """A sidecar's sysctl (sysctl_allowed), in the guest's namespace."""
    name, value = str(message["name"]), str(message["value"])
    if not sysctl_allowed(name, value):
        return {"ok": False, "error": f"sysctl {name!r}={value!r} is not one a role may set"}
    Path("/proc/sys", *name.split(".")).write_text(value + "\n")
    return {"ok": True}
