"""The ELF `vmlinux` inside a distribution's `vmlinuz`, for Firecracker.

Firecracker on x86_64 loads an ELF kernel only (docs/pvh.md in its repository: a kernel
with the PVH note boots through PVH, any other ELF through the Linux boot protocol); a
bzImage is refused. Debian ships only the bzImage, so the ELF is taken out of it here, in
Python: the x86 boot header names where the compressed payload lies (`payload_offset`,
`payload_length`, boot protocol 2.08 and later), its first bytes say how it is compressed,
and it is decompressed and checked to be a 64-bit x86 ELF. The pinned Debian kernel is
LZ4-compressed (`CONFIG_KERNEL_LZ4=y`), which the standard library cannot read, so the
LZ4 legacy format the kernel's build uses is decoded here too.
"""

from __future__ import annotations

import gzip
import lzma
import struct

from agentcage.errors import VmmError

_HDRS = b"HdrS"
_LZ4_LEGACY = b"\x02\x21\x4c\x18"
_ELF_X86_64 = (b"\x7fELF\x02\x01", 62)  # ELFCLASS64, little-endian; e_machine EM_X86_64


def payload(image: bytes) -> bytes:
    """The compressed kernel a bzImage carries, as its boot header locates it."""
    if image[0x202:0x206] != _HDRS:
        raise VmmError("not a bzImage: no x86 boot header (`HdrS` at 0x202)")
    (version,) = struct.unpack_from("<H", image, 0x206)
    if version < 0x208:
        raise VmmError(f"boot protocol {version:#x} predates payload_offset (2.08)")
    setup_sectors = image[0x1F1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sectors + 1) * 512 + offset
    if length == 0 or start + length > len(image):
        raise VmmError("the bzImage's payload lies outside the file")
    return image[start : start + length]


def decompress(data: bytes) -> bytes:
    """The payload decompressed, by the format its magic names.

    The kernel's build appends the decompressed size (4 bytes, little-endian) to every
    payload; it is checked against what came out.
    """
    if data.startswith(_LZ4_LEGACY):
        out = lz4_legacy(data[4:-4])
    elif data.startswith(b"\x1f\x8b"):
        out = gzip.decompress(data[:-4])
    elif data.startswith(b"\xfd7zXZ\x00"):
        out = lzma.decompress(data[:-4], format=lzma.FORMAT_XZ)
    elif data.startswith(b"\x28\xb5\x2f\xfd"):
        import zstandard  # only here: the cage layer loads no compression codecs at import

        out = zstandard.ZstdDecompressor().decompressobj().decompress(data[:-4])
    else:
        raise VmmError(f"the kernel payload's format is not one read here ({data[:6].hex()})")
    (size,) = struct.unpack("<I", data[-4:])
    if len(out) != size:
        raise VmmError(f"the kernel payload gave {len(out)} bytes, its trailer says {size}")
    return out


def lz4_legacy(data: bytes) -> bytes:
    """LZ4's legacy frame (what `lz4 -l` writes): blocks, each a 4-byte size and a block."""
    out = bytearray()
    at = 0
    while at + 4 <= len(data):
        (size,) = struct.unpack_from("<I", data, at)
        at += 4
        if data[at - 4 : at] == _LZ4_LEGACY:
            continue  # concatenated streams repeat the magic
        if at + size > len(data):
            raise VmmError("an LZ4 block runs past the end of the kernel payload")
        _lz4_block(memoryview(data)[at : at + size], out)
        at += size
    if at != len(data):
        raise VmmError("the LZ4 kernel payload ends inside a block header")
    return bytes(out)


def _length(block: memoryview, at: int, value: int) -> tuple[int, int]:
    """A token's length nibble of 15 goes on in bytes of 255 until a smaller one."""
    if value == 15:
        while True:
            extra = block[at]
            at += 1
            value += extra
            if extra != 255:
                break
    return value, at


def _lz4_block(block: memoryview, out: bytearray) -> None:
    at, end = 0, len(block)
    try:
        while True:
            token = block[at]
            at += 1
            literals, at = _length(block, at, token >> 4)
            out += block[at : at + literals]
            at += literals
            if at >= end:
                return  # the last sequence has literals only
            distance = block[at] | block[at + 1] << 8
            at += 2
            length, at = _length(block, at, token & 15)
            length += 4
            if distance == 0 or distance > len(out):
                raise VmmError("an LZ4 match points before the start of the kernel")
            source = len(out) - distance
            if distance >= length:
                out += out[source : source + length]
            else:  # overlapping: the last `distance` bytes repeat
                pattern = out[source:]
                out += (pattern * (length // distance + 1))[:length]
    except IndexError as exc:
        raise VmmError("an LZ4 block of the kernel payload is cut short") from exc


def check_elf(kernel: bytes) -> None:
    magic, machine = _ELF_X86_64
    if not kernel.startswith(magic) or struct.unpack_from("<H", kernel, 18)[0] != machine:
        raise VmmError("the kernel inside the bzImage is not a 64-bit x86 ELF (vmlinux)")


def vmlinux_of(vmlinuz: bytes) -> bytes:
    """The ELF kernel a bzImage carries; a `VmmError` if any step does not fit."""
    kernel = decompress(payload(vmlinuz))
    check_elf(kernel)
    return kernel
