"""The guest's first stage: busybox, the virtio modules, and an /init that mounts the root.

Debian's kernels build virtio as modules, so something must load them before the root
drive can be found; this archive is that something and nothing more. Its /init loads the
modules, mounts the drive labelled `agentcage.root=` read-only, and hands over to the guest
agent in it. Any failure ends /init, the kernel panics, and `panic=-1` with the monitor's
no-reboot setting ends the VM: no half-booted guest is left with a network.

The archive is written here (cpio "newc", gzip) rather than by `cpio`, which the host may
lack, and with fixed owners and times so the same inputs give the same bytes.
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
from pathlib import Path

from agentcage.errors import VmmError

# The guest agent, inside the root filesystem; rootfs.py puts it there.
GUEST_AGENT_PATH = "/usr/lib/agentcage/guest_agent.py"
GUEST_PYTHON = "/usr/bin/python3"
# Loaded in this order after their dependencies; absent devices just leave a module idle.
MODULES = (
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "vmw_vsock_virtio_transport",
    # Writable bind mounts (virtiofs.py); fuse comes with it.
    "virtiofs",
    # The agent's only link, to the proxy and the DNS sidecar (guest_sandbox.py).
    "veth",
    # Default deny's redirects in the proxy's namespace (cage/steering.py): nf_tables,
    # conntrack and NAT come with them as dependencies. No modprobe runs in the guest,
    # so nothing would load them on demand.
    "nft_chain_nat",
    "nft_nat",
    "nft_redir",
    "nft_ct",
)

INIT = f"""#!/bin/sh
# agentcage guest stage one. Exiting makes the kernel panic, which ends the VM.
export PATH=/bin
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev || exit 1
for module in $(cat /etc/agentcage-modules); do
    insmod "/lib/modules/$module" || {{ echo "agentcage: insmod $module failed"; exit 1; }}
done
label=
for word in $(cat /proc/cmdline); do
    case "$word" in agentcage.root=*) label="${{word#agentcage.root=}}" ;; esac
done
[ -n "$label" ] || {{ echo "agentcage: no agentcage.root= on the command line"; exit 1; }}
tries=0
until device=$(findfs "LABEL=$label" 2>/dev/null); do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || {{ echo "agentcage: no drive labelled $label"; exit 1; }}
    sleep 0.05
done
mount -t ext4 -o ro,nodev "$device" /root || exit 1
for fs in dev proc sys; do mount --move "/$fs" "/root/$fs" || exit 1; done
exec switch_root /root {GUEST_PYTHON} -I -B {GUEST_AGENT_PATH}
"""


class Cpio:
    """A "newc" cpio archive, built in memory."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
        self._ino += 1
        header = b"070701" + b"".join(b"%08x" % value for value in fields)
        self._out.write(header + name.encode() + b"\0")
        self._pad()
        self._out.write(data)
        self._pad()

    def _pad(self) -> None:
        self._out.write(b"\0" * (-self._out.tell() % 4))

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self._out.getvalue()


def modinfo(ko: bytes) -> dict[str, str]:
    """The `.modinfo` section of an ELF64 kernel module: its `key=value` strings."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2:
        raise VmmError("not an ELF64 kernel module")
    (shoff,) = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize) for i in range(shnum)]
    names_at = sections[shstrndx][4]
    for name_off, _type, _flags, _addr, offset, size in sections:
        name = ko[names_at + name_off : ko.index(b"\0", names_at + name_off)]
        if name == b".modinfo":
            info: dict[str, str] = {}
            for item in ko[offset : offset + size].split(b"\0"):
                key, _, value = item.decode("utf-8", "replace").partition("=")
                if key:
                    info.setdefault(key, value)
            return info
    return {}


def module_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """`wanted` and everything they depend on, dependencies first, as paths under modules_dir."""
    by_name = {path.stem.replace("-", "_"): path for path in modules_dir.rglob("*.ko")}
    order: list[Path] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        path = by_name.get(name)
        if path is None:
            raise VmmError(f"kernel module {name} is not in {modules_dir}")
        if path in order:
            return
        if name in visiting:
            raise VmmError(f"kernel modules depend on each other in a cycle at {name}")
        visiting.add(name)
        for dependency in filter(None, modinfo(path.read_bytes()).get("depends", "").split(",")):
            visit(dependency.replace("-", "_"))
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def build_initramfs(busybox: Path, modules_dir: Path, init: str = INIT) -> bytes:
    """The archive; `init` is the stage that hands over (the e2e tests' Debian VM boots
    systemd on a writable root instead of the guest agent: tests/e2e/debian_vm.py)."""
    archive = Cpio()
    for directory in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "root", "sys"):
        archive.directory(directory)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in ("sh", "mount", "insmod", "cat", "findfs", "sleep", "switch_root"):
        archive.symlink(f"bin/{applet}", "busybox")
    order = module_order(modules_dir, MODULES)
    for path in order:
        archive.file(f"lib/modules/{path.name}", path.read_bytes())
    archive.file("etc/agentcage-modules", "".join(f"{p.name}\n" for p in order).encode())
    archive.file("init", init.encode(), 0o755)
    return gzip.compress(archive.finish(), compresslevel=6, mtime=0)
