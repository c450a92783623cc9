"""Writable bind mounts (the agent's workspace) in a QEMU microVM: virtiofs, live, no root.

The guest's kernel (Debian's cloud kernel) has `virtiofs` (a module) and no 9p, so a
writable bind mount is a `vhost-user-fs-device` whose other end is `virtiofsd`, one per
mount, beside QEMU in the VM's container. The daemon is Debian trixie's Rust `virtiofsd`,
which serves a directory without root (`--sandbox none`: the container is its sandbox,
uid 10000, no capabilities, read-only root; the daemon still applies its own seccomp
filter). Debian 12 has only QEMU's C `virtiofsd`, which needs root for its namespace or
chroot sandbox and cannot create a file as the guest's uid without CAP_SETUID, so trixie's
is taken: its binary and the libraries it links (glibc 2.41, newer than the image's
2.36), extracted from the packages by `mmdebstrap --variant=extract` (nothing installed,
no script run), each file checked against the digest pinned here, and put in
`VIRTIOFSD_DIR` of the VM image, where the daemon runs through its own loader.

Ownership: a daemon without CAP_CHOWN/CAP_SETUID creates every file as itself, so what the
agent writes belongs on the host to the VM container's user: uid 10000 rootful, the user
rootless (Podman's keep-id). `--translate-uid/gid map:` shows that owner to the guest as
the agent's uid and gid, so the agent owns what it wrote and what it finds there.
"""

from __future__ import annotations

import hashlib
import shlex
import tempfile
from pathlib import Path

from agentcage.cage.vm.debian_parts import run_tool, sha256_of
from agentcage.cage.vm.machine import Share
from agentcage.cage.vm.socket_daemon import SocketDaemon
from agentcage.errors import VmmError

VIRTIOFSD_SUITE = "trixie"
VIRTIOFSD_PACKAGE = "virtiofsd=1.13.2-1+deb13u1"
VIRTIOFSD_DIR = "/opt/virtiofsd"  # in the VM container's image
_LIB = "usr/lib/x86_64-linux-gnu"
# Name in VIRTIOFSD_DIR -> (where the extracted packages have it, its pinned SHA-256).
VIRTIOFSD_FILES = {
    "virtiofsd": (
        "usr/libexec/virtiofsd",
        "477d185c64d266e94cebb0662242e0553fe1756db27a4c28b82d8e365b9efc7b",
    ),
    "ld-linux-x86-64.so.2": (
        f"{_LIB}/ld-linux-x86-64.so.2",
        "8642358c60bdf4579911381070c69cc7b1a447809b73d483ce799c4421609d21",
    ),
    "libc.so.6": (
        f"{_LIB}/libc.so.6",
        "cc7377e8816cefadbb4ee083f5387f67a4a883d90bc273160842a6ac075af662",
    ),
    "libm.so.6": (
        f"{_LIB}/libm.so.6",
        "6d567d53e895273ca14a1f9dc164fc6c8d39aed2f60aa46a733c2784228915f3",
    ),
    "libcap-ng.so.0": (
        f"{_LIB}/libcap-ng.so.0",
        "6b5be42df1bed00b8ea1f52e9412dce5ed500c29a6dd22b31e72f5dab5a3a575",
    ),
    "libseccomp.so.2": (
        f"{_LIB}/libseccomp.so.2",
        "c851a2378b4ef3a42ada5f8ff1604ad38f6bbcafa2aeea3f6680160d628c2f27",
    ),
    "libgcc_s.so.1": (
        f"{_LIB}/libgcc_s.so.1",
        "30c61ab012a4241bed033725a09b61f5fdd3bb7df95ee852d0b096520524c7af",
    ),
}
# Where the guest agent mounts each share: under guest_roles.RUN_ROOT, its tmpfs.
GUEST_SHARES = "/run/agentcage/shares"
# What to do about a writable bind mount where the monitor is Firecracker.
WRITABLE_BIND_HINT = (
    "set `firecracker.hypervisor: qemu` (virtiofs, live), mark the mount `:ro` (a "
    "snapshot copied in at create), or keep what the agent writes in a named volume "
    "(`container.named_volumes`); see docs/microvm.md, Volumes"
)


def virtiofsd_key() -> str:
    """What the VM image's base is keyed by besides its packages."""
    pins = "".join(f"{name}={digest}" for name, (_, digest) in sorted(VIRTIOFSD_FILES.items()))
    return f"{VIRTIOFSD_SUITE}:{VIRTIOFSD_PACKAGE}:{hashlib.sha256(pins.encode()).hexdigest()}"


def stage_virtiofsd(target: Path) -> None:
    """The pinned daemon and its libraries, checked, as plain files in `target`."""
    with tempfile.TemporaryDirectory(prefix="agentcage-virtiofsd-") as tmp:
        tree = Path(tmp) / "tree"
        run_tool(
            ["mmdebstrap", "--quiet", "--variant=extract", f"--include={VIRTIOFSD_PACKAGE}",
             VIRTIOFSD_SUITE, str(tree)],
            timeout=600,
        )  # fmt: skip
        target.mkdir(parents=True, exist_ok=True)
        for name, (inside, pinned) in VIRTIOFSD_FILES.items():
            source = (tree / inside).resolve()
            if not source.is_relative_to(tree.resolve()) or not source.is_file():
                raise VmmError(f"{VIRTIOFSD_PACKAGE} from {VIRTIOFSD_SUITE} has no {inside}")
            actual = sha256_of(source)
            if actual != pinned:
                raise VmmError(
                    f"{inside} from {VIRTIOFSD_SUITE} has SHA-256 {actual}, not the pinned "
                    f"{pinned}",
                    hint="the archive changed under the pin; update VIRTIOFSD_FILES in "
                    "agentcage/cage/vm/virtiofs.py only after checking the new packages",
                )
            (target / name).write_bytes(source.read_bytes())
            (target / name).chmod(0o755)


def image_hook(staged: Path) -> str:
    """The mmdebstrap hook that puts `staged` into the image at VIRTIOFSD_DIR."""
    inside = f'"$1{VIRTIOFSD_DIR}"'
    return f"--customize-hook=mkdir -p {inside} && cp -a {shlex.quote(str(staged))}/. {inside}/"


def share_tag(host: str) -> str:
    """The virtiofs tag of a host directory: stable for its path, 36 bytes at most."""
    return "ws-" + hashlib.sha256(host.encode()).hexdigest()[:16]


def guest_share_point(host: str) -> str:
    return f"{GUEST_SHARES}/{share_tag(host)}"


def virtiofsd_argv(
    shared_dir: str, socket: Path, guest: tuple[int, int], host: tuple[int, int]
) -> list[str]:
    """The daemon for one share: `guest` (the agent's uid and gid) sees `host` (the owner
    the daemon gives every file it creates, its own) as itself, both ways."""
    return [
        f"{VIRTIOFSD_DIR}/ld-linux-x86-64.so.2",
        "--library-path",
        VIRTIOFSD_DIR,
        f"{VIRTIOFSD_DIR}/virtiofsd",
        "--shared-dir",
        shared_dir,
        "--socket-path",
        str(socket),
        "--sandbox",
        "none",
        # Its default asks for 1,000,000 descriptors, above a container's hard limit.
        "--rlimit-nofile",
        "0",
        "--translate-uid",
        f"map:{guest[0]}:{host[0]}:1",
        "--translate-gid",
        f"map:{guest[1]}:{host[1]}:1",
        "--log-level",
        "warn",
    ]


class VirtiofsDaemon(SocketDaemon):
    """One `virtiofsd`, serving one host directory on a unix socket QEMU connects to."""

    def __init__(self, shared_dir: str, share: Share, guest: tuple[int, int],
                 host: tuple[int, int]) -> None:  # fmt: skip
        argv = virtiofsd_argv(shared_dir, share.socket, guest, host)
        super().__init__(f"virtiofsd ({share.tag})", argv, share.socket)
        self.share = share
