"""Build, or find already built, the guest's kernel, initramfs and root image.

Each artefact lives under the cache directory in a folder named by a hash of everything
that goes into it (pins, package list, /init, the guest agent's source), so a change to
any input builds anew and an unchanged one is reused; a build lands under a temporary
name and is renamed into place, so a half-built artefact is never taken for a whole one.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import agentcage
from agentcage.cage.image_inputs import digest, source_root, tree_digest
from agentcage.cage.images import ImageBuilder
from agentcage.cage.vm import guest_agent, initramfs, rootfs
from agentcage.cage.vm.debian_parts import (
    BUSYBOX,
    KERNEL,
    KERNEL_RELEASE,
    VMLINUX_SHA256,
    sha256_of,
    unpack,
)
from agentcage.cage.vm.machine import ROOT_LABEL
from agentcage.cage.vm.owned_tree import unpack_owned
from agentcage.cage.vm.vmlinux import vmlinux_of
from agentcage.cage.wheelhouse import ImagePlatform, uname_arch
from agentcage.errors import VmmError


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    root: Path


def default_cache() -> Path:
    if "AGENTCAGE_VM_CACHE" in os.environ:
        return Path(os.environ["AGENTCAGE_VM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentcage" / "vm"


def _once(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, built by `build(tmp)` into a sibling temporary path and renamed."""
    if target.exists():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp / "out")
        (tmp / "out").rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _boot_parts(out: Path) -> None:
    work = out.parent / "work"
    kernel = unpack(KERNEL, work)
    busybox = unpack(BUSYBOX, work)
    out.mkdir()
    shutil.copyfile(kernel / "boot" / f"vmlinuz-{KERNEL_RELEASE}", out / "vmlinuz")
    modules = kernel / "lib" / "modules" / KERNEL_RELEASE
    (out / "initrd.img").write_bytes(initramfs.build_initramfs(busybox / "bin/busybox", modules))


def elf_kernel(guest: GuestImage) -> Path:
    """The ELF `vmlinux` of the guest's kernel, for Firecracker: made once, beside it.

    The boot folder is named by the pinned package's digest; the ELF is checked against its
    own pin before it is put there, and again when found there.
    """
    target = guest.kernel.with_name("vmlinux")

    def extract(out: Path) -> None:
        out.write_bytes(vmlinux_of(guest.kernel.read_bytes()))

    with (guest.kernel.parent.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _once(target, extract)
    actual = sha256_of(target)
    if actual != VMLINUX_SHA256:
        raise VmmError(
            f"{target} has SHA-256 {actual}, not the pinned {VMLINUX_SHA256}",
            hint=f"remove {target}; it is made again from the pinned kernel package",
        )
    return target


def build_guest(cache: Path | None = None) -> GuestImage:
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    agent = Path(guest_agent.__file__)
    package = Path(agentcage.__file__).parent
    # uv.lock pins every wheel by hash, so with the architecture it stands for the runtime
    # image's wheelhouse: a cached tree is found without uv or pip (a rootless user's cache
    # seeded by root). The guest runs on this machine's architecture.
    this_arch = ImagePlatform(uname_arch(platform.machine()))
    boot_key = digest(KERNEL.sha256, BUSYBOX.sha256, initramfs.INIT, *initramfs.MODULES)
    lock = (source_root() / "uv.lock").read_bytes()
    tree_key = digest(rootfs.SUITE, *rootfs.PACKAGES, lock, this_arch.arch, rootfs.VENV, "tar")
    sources = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    root_key = digest(tree_key, agent.read_bytes(), ROOT_LABEL, tree_digest(package, sources))
    with (cache / ".lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # one builder at a time; the others then reuse
        boot = _once(cache / f"boot-{boot_key}", _boot_parts)

        def root_image(out: Path) -> None:
            # The Debian tree only when a root image is to be made from it.
            wheelhouse = ImageBuilder().wheelhouse(source_root(), this_arch)
            archive = _once(
                cache / f"tree-{tree_key}.tar", lambda t: rootfs.debootstrap_tree(t, wheelhouse)
            )
            with tempfile.TemporaryDirectory(prefix=".root-tree-", dir=cache) as tmp:
                tree = Path(tmp) / "tree"
                owners = unpack_owned(archive, tree)
                rootfs.install_agent(tree, agent)
                rootfs.install_agentcage(tree, package)
                rootfs.ext4_image(tree, out, ROOT_LABEL, owners=owners)

        root = _once(cache / f"root-{root_key}.ext4", root_image)
        # Every change of input makes new artefacts (hundreds of MiB); keep the current ones
        # only. A VM still running an older image keeps its open file until it stops.
        tree = cache / f"tree-{tree_key}.tar"
        for current in (boot, tree, root):
            kind = current.name.split("-", 1)[0]
            for old in cache.glob(f"{kind}-*"):
                if old != current:
                    shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
    return GuestImage(boot / "vmlinuz", boot / "initrd.img", root)
