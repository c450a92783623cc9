"""Recognise a packed (compressed or archived) body by its first bytes; unpack and repack it.

A server can hand back what it stored in a packed form whatever its
`Content-Encoding` says: a gzip file served as `application/octet-stream`, a zip
archive of a repository. The real value inside is invisible to a byte scrubber,
so responses from hosts that receive secrets are sniffed here. Only a body that
starts with a signature is unpacked; unpacking is bounded like
`agentcage.policy.decoding` (output beyond `limit` raises `DecodeError`).

Signatures: gzip `1f 8b`; zlib `78` + a flag byte that makes a valid header
without a preset dictionary; zstd `28 b5 2f fd`; bzip2 `BZh1`-`BZh9` followed by
a block or end-of-stream magic; xz `fd 37 7a 58 5a 00`; zip `PK 03 04`. Brotli
has no signature and is not sniffed.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zipfile
import zlib
from typing import Literal, Protocol

from agentcage.policy.decoding import DecodeError, decode_body, encode_body

Packing = Literal["gzip", "zlib", "zstd", "bzip2", "xz", "zip"]
# Enough leading bytes to tell every signature apart (bzip2's is the longest).
SIGNATURE_BYTES = 10
MAX_MEMBERS = 10_000
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_CHUNK = 64 * 1024
_BZ2_MAGICS = (b"1AY&SY", b"\x17rE8P\x90")  # first block, empty stream
_PREFIXES: tuple[tuple[bytes, Packing], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
)
_ZLIB_FLAGS = frozenset({0x01, 0x5E, 0x9C, 0xDA})  # `78 xx` headers without FDICT
# The first bytes of every signature: most data is told apart by one set lookup.
SIGNATURE_STARTS = frozenset(prefix[0] for prefix, _ in _PREFIXES) | {0x78, ord("B")}


def sniff(data: bytes) -> Packing | None:
    """The packing `data` starts with, or None."""
    for prefix, packing in _PREFIXES:
        if data.startswith(prefix):
            return packing
    if len(data) >= 2 and data[0] == 0x78 and data[1] in _ZLIB_FLAGS:
        return "zlib"
    if data[:3] == b"BZh" and data[3:4] in b"123456789" and data[4:10] in _BZ2_MAGICS:
        return "bzip2"
    return None


def undecided(head: bytes) -> bool:
    """Whether `head` is too short to tell: more bytes could still make a signature."""
    if len(head) >= SIGNATURE_BYTES or not head or head[0] not in SIGNATURE_STARTS:
        return False
    return sniff(head) is None


def unpack(data: bytes, packing: Packing, limit: int) -> list[bytes]:
    """The contents: one item, or one per zip member (in archive order)."""
    if packing == "zip":
        return _unzip(data, limit)
    if packing in ("bzip2", "xz"):
        return [_bz2_or_xz(data, packing, limit)]
    coding = {"gzip": "gzip", "zlib": "deflate", "zstd": "zstd"}[packing]
    return [decode_body(data, coding, limit)]


def repack(original: bytes, packing: Packing, contents: list[bytes]) -> bytes:
    """`contents` packed as `original` was (zip: same member names and methods)."""
    if packing == "zip":
        return _rezip(original, contents)
    [content] = contents
    if packing == "bzip2":
        return bz2.compress(content)
    if packing == "xz":
        return lzma.compress(content, format=lzma.FORMAT_XZ)
    if packing == "zlib":
        return zlib.compress(content)
    return encode_body(content, packing)


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _bz2_or_xz(data: bytes, packing: Packing, limit: int) -> bytes:
    out = bytearray()
    pending = data
    try:
        # Like gzip, both formats allow several streams back to back.
        while pending:
            decomp: _Decompressor = (
                bz2.BZ2Decompressor()
                if packing == "bzip2"
                else lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            )
            out += decomp.decompress(pending, limit + 1 - len(out))
            while not decomp.eof and not decomp.needs_input and len(out) <= limit:
                out += decomp.decompress(b"", limit + 1 - len(out))
            if len(out) > limit:
                raise DecodeError(f"{packing} body decodes to more than {limit} bytes")
            if not decomp.eof:
                raise DecodeError(f"{packing} body is truncated")
            pending = decomp.unused_data
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DecodeError(f"{packing} body is corrupt") from exc
    return bytes(out)


def _unzip(data: bytes, limit: int) -> list[bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise DecodeError(f"zip archive has more than {MAX_MEMBERS} members")
            if sum(member.file_size for member in members) > limit:
                raise DecodeError(f"zip archive unpacks to more than {limit} bytes")
            return [_member(archive, member) for member in members]
    except DecodeError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
        raise DecodeError(f"zip archive cannot be unpacked: {exc}") from exc
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
        raise DecodeError(f"zip archive is corrupt: {type(exc).__name__}") from exc


def _member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    if member.compress_type not in _ZIP_METHODS:
        # bzip2 and LZMA members decompress without an output bound in zipfile.
        raise DecodeError(f"zip member uses compression method {member.compress_type}")
    out = bytearray()
    # Small reads keep each inflate step bounded; a member yields at most its
    # declared size (the sum checked above), and a wrong size fails its CRC check.
    with archive.open(member) as handle:
        while chunk := handle.read(_CHUNK):
            out += chunk
    return bytes(out)


def _rezip(original: bytes, contents: list[bytes]) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(original)) as source,
        zipfile.ZipFile(out, "w") as target,
    ):
        for member, content in zip(source.infolist(), contents, strict=True):
            info = zipfile.ZipInfo(member.filename, member.date_time)
            info.compress_type = member.compress_type
            info.external_attr = member.external_attr
            info.create_system = member.create_system
            info.comment = member.comment
            target.writestr(info, content)
        target.comment = source.comment
    return out.getvalue()
