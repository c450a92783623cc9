"""The ELF kernel Firecracker boots, taken out of the pinned Debian package's vmlinuz."""

from __future__ import annotations

import struct

from agentcage.cage.vm.debian_parts import VMLINUX_SHA256, sha256_of
from agentcage.cage.vm.guest_image import GuestImage, elf_kernel

PHYS32_ENTRY = 18  # XEN_ELFNOTE_PHYS32_ENTRY: the PVH entry point Firecracker looks for


def notes(elf: bytes) -> set[tuple[bytes, int]]:
    """(owner, type) of every note in the ELF's PT_NOTE segments."""
    (phoff,) = struct.unpack_from("<Q", elf, 32)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    found: set[tuple[bytes, int]] = set()
    for index in range(phnum):
        kind, _flags, offset, _v, _p, size = struct.unpack_from(
            "<IIQQQQ", elf, phoff + index * phentsize
        )
        at, end = offset, offset + size
        while kind == 4 and at + 12 <= end:
            namesz, descsz, note = struct.unpack_from("<III", elf, at)
            found.add((elf[at + 12 : at + 12 + namesz].rstrip(b"\0"), note))
            at += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return found


def test_the_pinned_kernel_yields_the_pinned_vmlinux(guest: GuestImage) -> None:
    kernel = elf_kernel(guest)
    assert kernel == guest.kernel.with_name("vmlinux")
    assert sha256_of(kernel) == VMLINUX_SHA256
    elf = kernel.read_bytes()
    assert elf[:4] == b"\x7fELF" and elf[4] == 2  # 64-bit
    assert struct.unpack_from("<H", elf, 18)[0] == 62  # x86-64
    # CONFIG_PVH=y: Firecracker boots it through PVH rather than the Linux boot protocol.
    assert (b"Xen", PHYS32_ENTRY) in notes(elf)
    # Found again, not made again.
    made = kernel.stat().st_mtime_ns
    assert elf_kernel(guest) == kernel and kernel.stat().st_mtime_ns == made
