"""vmlinux.py on hand-made bzImages: header, each payload format, LZ4's own cases."""

from __future__ import annotations

import gzip
import lzma
import struct
from collections.abc import Callable

import pytest
import zstandard

from agentcage.cage.vm.vmlinux import lz4_legacy, vmlinux_of
from agentcage.errors import VmmError

ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + struct.pack("<H", 62) + b"kernel text " * 40


def bzimage(payload: bytes, version: int = 0x20F, setup_sectors: int = 2) -> bytes:
    image = bytearray((setup_sectors + 1) * 512)
    image[0x1F1] = setup_sectors
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x206, version)
    struct.pack_into("<II", image, 0x248, 16, len(payload))
    return bytes(image) + b"\0" * 16 + payload + b"trailing setup data"


def sized(compressed: bytes, original: bytes) -> bytes:
    return compressed + struct.pack("<I", len(original))


def lz4_block(*sequences: tuple[bytes, int, int]) -> bytes:
    """Sequences of (literals, distance, match length >= 4); distance 0 ends the block."""
    out = bytearray()
    for literals, distance, length in sequences:
        lit, match = len(literals), length - 4
        out.append(min(lit, 15) << 4 | (min(match, 15) if distance else 0))
        if lit >= 15:
            out += _more(lit - 15)
        out += literals
        if distance:
            out += struct.pack("<H", distance)
            if match >= 15:
                out += _more(match - 15)
    return bytes(out)


def _more(value: int) -> bytes:
    return b"\xff" * (value // 255) + bytes([value % 255])


def lz4_payload(*blocks: bytes) -> bytes:
    return b"\x02\x21\x4c\x18" + b"".join(struct.pack("<I", len(b)) + b for b in blocks)


@pytest.mark.parametrize(
    "compress",
    [
        gzip.compress,
        lambda d: lzma.compress(d, format=lzma.FORMAT_XZ),
        zstandard.ZstdCompressor().compress,
    ],
    ids=["gzip", "xz", "zstd"],
)
def test_each_standard_format(compress: Callable[[bytes], bytes]) -> None:
    assert vmlinux_of(bzimage(sized(compress(ELF), ELF))) == ELF


def test_lz4_literals_matches_overlaps_and_long_lengths() -> None:
    head = ELF[:20]
    block = lz4_block(
        (head, 20, 20),  # the 20 bytes again
        (b"ab", 2, 300),  # overlapping: "ab" over and over, a length past 15 + 255
        (b"x" * 40, 0, 0),  # literal-only end, a literal length past 15
    )
    want = head * 2 + b"ab" * 151 + b"x" * 40
    assert lz4_legacy(lz4_payload(block)[4:]) == want
    # Blocks follow blocks, and a repeated magic (concatenated streams) is skipped.
    two = lz4_payload(block) + lz4_payload(lz4_block((b"end", 0, 0)))
    assert lz4_legacy(two[4:]) == want + b"end"


def test_an_lz4_kernel_inside_a_bzimage() -> None:
    block = lz4_block((ELF, 0, 0))
    assert vmlinux_of(bzimage(sized(lz4_payload(block), ELF))) == ELF


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (b"\x7fELF" + b"\0" * 0x300, "no x86 boot header"),
        (bzimage(sized(gzip.compress(ELF), ELF), version=0x207), "predates payload_offset"),
        (bzimage(b"BZh91AY&SY" + b"\0" * 8), "format is not one read here"),
        (bzimage(sized(gzip.compress(ELF), ELF + b"x")), "its trailer says"),
        (bzimage(sized(gzip.compress(b"MZ not elf"), b"MZ not elf")), "not a 64-bit x86 ELF"),
        (bzimage(sized(lz4_payload(lz4_block((b"ab", 9, 4))), b"ab")), "before the start"),
        (bzimage(sized(lz4_payload(b"\xf0"), b"")), "cut short"),
        (bzimage(sized(b"\x02\x21\x4c\x18" + struct.pack("<I", 99) + b"ab", b"")), "runs past"),
    ],
    ids=["not-bzimage", "old-protocol", "bzip2", "size", "not-elf", "distance", "short", "past"],
)
def test_what_does_not_fit_is_refused(image: bytes, message: str) -> None:
    with pytest.raises(VmmError, match=message):
        vmlinux_of(image)
