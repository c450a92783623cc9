"""Writable bind mounts (the agent's workspace) in a QEMU microVM: virtiofs, live, no root.

The guest's kernel (Debian's cloud kernel) has `virtiofs` (a module) and no 9p, so a
writable bind mount is a `vhost-user-fs-device` whose other end is `virtiofsd`, one per
mount, beside QEMU in the VM's container. The daemon is Debian trixie's Rust `virtiofsd`,
which serves a directory without root (`--sandbox none`: the container is its sandbox,
uid 10000, no capabilities, read-only root; the daemon still applies its own seccomp
filter). Debian 12 has only QEMU's C `virtiofsd`, which needs root for its namespace or
chroot sandbox and cannot create a file as the guest's uid without CAP_SETUID, so trixie's
is taken: its binary and the libraries it links (glibc 2.41, newer than the image's
2.36), extracted from trixie's packages by `mmdebstrap --variant=extract` (nothing
installed, no script run; apt checks the archive's signature and each .deb's digest, as
for every package of the images) and put in `VIRTIOFSD_DIR` of the VM image, where the
daemon runs through its own loader. As for the other images, the suite's current versions
are taken and `images/debian.lock` records them (`agentcage deps check --update`); its
trixie lines are part of the image's key, so recording newer versions rebuilds it.

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

from agentcage.cage.image_inputs import debian_lock
from agentcage.cage.vm.debian_parts import run_tool
from agentcage.cage.vm.machine import Share
from agentcage.cage.vm.socket_daemon import SocketDaemon
from agentcage.errors import VmmError

VIRTIOFSD_SUITE = "trixie"
# The daemon and the packages of the libraries it links (`agentcage deps check` records
# their versions in images/debian.lock).
VIRTIOFSD_PACKAGES = ("virtiofsd", "libc6", "libcap-ng0", "libseccomp2", "libgcc-s1")
VIRTIOFSD_DIR = "/opt/virtiofsd"  # in the VM container's image
_LIB = "usr/lib/x86_64-linux-gnu"
# Name in VIRTIOFSD_DIR -> where the extracted packages have it.
VIRTIOFSD_FILES = {
    "virtiofsd": "usr/libexec/virtiofsd",
    "ld-linux-x86-64.so.2": f"{_LIB}/ld-linux-x86-64.so.2",
    "libc.so.6": f"{_LIB}/libc.so.6",
    "libm.so.6": f"{_LIB}/libm.so.6",
    "libcap-ng.so.0": f"{_LIB}/libcap-ng.so.0",
    "libseccomp.so.2": f"{_LIB}/libseccomp.so.2",
    "libgcc_s.so.1": f"{_LIB}/libgcc_s.so.1",
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
    """What the VM image's base is keyed by besides its own packages: the daemon's suite,
    packages and the versions images/debian.lock records for them."""
    recorded = debian_lock(VIRTIOFSD_SUITE, VIRTIOFSD_PACKAGES)
    return ":".join((VIRTIOFSD_SUITE, *VIRTIOFSD_PACKAGES, *recorded))


def stage_virtiofsd(target: Path) -> None:
    """The daemon and its libraries as plain files in `target`, checked to run together."""
    with tempfile.TemporaryDirectory(prefix="agentcage-virtiofsd-") as tmp:
        tree = Path(tmp) / "tree"
        run_tool(
            ["mmdebstrap", "--quiet", "--variant=extract",
             f"--include={','.join(VIRTIOFSD_PACKAGES)}", VIRTIOFSD_SUITE, str(tree)],
            timeout=600,
        )  # fmt: skip
        target.mkdir(parents=True, exist_ok=True)
        for name, inside in VIRTIOFSD_FILES.items():
            source = (tree / inside).resolve()
            if not source.is_relative_to(tree.resolve()) or not source.is_file():
                raise VmmError(
                    f"Debian {VIRTIOFSD_SUITE}'s {', '.join(VIRTIOFSD_PACKAGES)} have no {inside}",
                    hint="the packages changed their layout; update VIRTIOFSD_FILES in "
                    "agentcage/cage/vm/virtiofs.py",
                )
            (target / name).write_bytes(source.read_bytes())
            (target / name).chmod(0o755)
    # The loader, the libraries and the daemon must agree: a mismatch fails the build here,
    # not each cage's start.
    run_tool([str(target / "ld-linux-x86-64.so.2"), "--library-path", str(target),
              str(target / "virtiofsd"), "--version"])  # fmt: skip


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
