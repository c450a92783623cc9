"""Packed bodies: recognised by their first bytes, unpacked within a bound, repacked alike."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
import zlib

import pytest
import zstandard

from agentcage.policy.decoding import DecodeError
from agentcage.policy.scrubbing.packing import Packing, repack, sniff, undecided, unpack

DATA = b"stored: sk-test-REALvalue0123456789 " * 20
PACKERS: dict[Packing, bytes] = {
    "gzip": gzip.compress(DATA),
    "zlib": zlib.compress(DATA),
    "zstd": zstandard.ZstdCompressor().compress(DATA),
    "bzip2": bz2.compress(DATA),
    "xz": lzma.compress(DATA, format=lzma.FORMAT_XZ),
}


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize("packing", sorted(PACKERS))
def test_each_packing_is_sniffed_unpacked_and_repacked(packing: Packing) -> None:
    packed = PACKERS[packing]
    assert sniff(packed) == packing
    assert unpack(packed, packing, 1 << 20) == [DATA]
    again = repack(packed, packing, [b"changed"])
    assert sniff(again) == packing
    assert unpack(again, packing, 1 << 20) == [b"changed"]


def test_every_zlib_level_is_sniffed() -> None:
    for level in range(10):
        assert sniff(zlib.compress(DATA, level)) == "zlib", level


def test_a_zip_archive_is_unpacked_member_by_member_and_rebuilt_alike() -> None:
    members = {"dir/": b"", "a.txt": DATA, "b.bin": b"\x00\x01"}
    archive = _zip(members) + b""
    assert sniff(archive) == "zip"
    assert unpack(archive, "zip", 1 << 20) == list(members.values())
    rebuilt = repack(archive, "zip", [b"", b"clean", b"\x00\x01"])
    with zipfile.ZipFile(io.BytesIO(rebuilt)) as result:
        assert result.namelist() == list(members)
        assert [i.compress_type for i in result.infolist()][1] == zipfile.ZIP_DEFLATED
        assert result.read("a.txt") == b"clean"


@pytest.mark.parametrize(
    "text",
    [b"", b"{}", b'{"data": 1}', b"x = 1", b"xml", b"BZh9 is a word", b"PK is short", b"\x1f"],
)
def test_ordinary_bodies_are_not_packed(text: bytes) -> None:
    assert sniff(text) is None


def test_undecided_until_a_signature_can_be_told() -> None:
    assert undecided(b"\x1f")
    assert undecided(b"BZh9")
    assert undecided(b"PK")
    assert not undecided(b"")  # nothing at all: the body is empty
    assert not undecided(b"{")
    assert not undecided(b"data: {}")
    assert not undecided(b"\x1f\x8b")  # decided: gzip
    assert not undecided(b"BZh91AY&SY")


@pytest.mark.parametrize("packing", sorted(PACKERS))
def test_unpacking_is_bounded(packing: Packing) -> None:
    big = b"\x00" * (2 << 20)
    packed = repack(PACKERS[packing], packing, [big])
    with pytest.raises(DecodeError):
        unpack(packed, packing, 1 << 20)


@pytest.mark.parametrize("packing", sorted(PACKERS))
def test_truncated_or_corrupt_bodies_do_not_unpack(packing: Packing) -> None:
    packed = PACKERS[packing]
    with pytest.raises(DecodeError):
        unpack(packed[: len(packed) // 2], packing, 1 << 20)
    with pytest.raises(DecodeError):
        unpack(packed[:6] + b"\xff" * 40, packing, 1 << 20)


def test_zip_bounds_and_refusals() -> None:
    with pytest.raises(DecodeError, match="more than"):
        unpack(_zip({"a": b"\x00" * (2 << 20)}), "zip", 1 << 20)
    with pytest.raises(DecodeError, match="compression method"):
        unpack(_zip({"a": DATA}, zipfile.ZIP_BZIP2), "zip", 1 << 20)
    with pytest.raises(DecodeError):
        unpack(_zip({"a": DATA})[:40], "zip", 1 << 20)
    stored = _zip({"a": DATA}, zipfile.ZIP_STORED)
    assert unpack(stored, "zip", 1 << 20) == [DATA]
