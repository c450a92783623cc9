"""Unpack compressed data and archives found by their content, whatever the headers say.

An agent need not label what it compressed: a raw deflate stream, bzip2, xz,
brotli, a zip or tar archive can go out as `application/octet-stream` or inside
a base64 string. `unpack` recognises each by its signature (gzip, zlib, zstd,
bzip2, xz, zip, tar's `ustar` mark) and, for binary data
with none, tries raw deflate and brotli, which have no signature; those two
are kept only when the stream ends cleanly and holds text, since random bytes
now and then inflate to a few junk bytes. Output is bounded by `limit` bytes in
all (a bomb costs at most that), archive members by count.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import zipfile
import zlib
from collections.abc import Callable

import brotli
import zstandard

from agentcage.policy.media import is_text
from agentcage.policy.scrubbing.packing import sniff

MAX_MEMBERS = 256  # archive members read from one archive
_PROBE = 4096  # compressed bytes a signature-less try gets before it must have failed
_CONTENT_CHUNK = 256  # brotli input a step for Content-Encoding
_CHUNK = 32  # brotli input a step: ~25 bytes can hold a 16 MiB meta-block
_REFEED_BELOW = 64 * 1024
_ZIP = b"PK\x03\x04"
_ZIP_END = b"PK\x05\x06"
_ZIP_END_REACH = 65536 + 22  # the end record and the longest archive comment
_TAR_MAGIC = (257, b"ustar")
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ERRORS = (zlib.error, lzma.LZMAError, brotli.error, OSError, EOFError, ValueError)


def unpack(data: bytes, limit: int) -> tuple[str, bytes] | None:
    """(what it was, the contents NUL-joined) for packed `data`, else None.

    gzip, zlib and zstd are `decode_content`'s (`sniff_compression` finds them);
    this covers the rest.
    """
    if limit <= 0 or len(data) < 8:
        return None
    kind = sniff(data[:16])
    try:
        if kind in ("bzip2", "xz"):
            return kind, _stream(data, limit, kind)
        if data[_TAR_MAGIC[0] : _TAR_MAGIC[0] + 5] == _TAR_MAGIC[1]:
            members = _untar(data, limit)
            return ("tar", members) if members is not None else None
        if data.startswith(_ZIP) or _ends_a_zip(data):
            return "zip", _unzip(data, limit)
        if kind is None and not is_text(data[:256]):
            for name, attempt in _HEADERLESS:
                try:
                    out = attempt(data, limit)
                except _ERRORS:
                    continue
                if out:
                    return name, out
    except (*_ERRORS, zipfile.BadZipFile, NotImplementedError, RuntimeError):
        return None
    return None


def _stream(data: bytes, limit: int, kind: str) -> bytes:
    decomp: bz2.BZ2Decompressor | lzma.LZMADecompressor = (
        bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
    )
    return decomp.decompress(data, limit)


def _ends_a_zip(data: bytes) -> bool:
    """A zip archive after other bytes (a self-extracting archive, junk put first):
    its end record is in the last 64 KiB, and `zipfile` finds the members from it."""
    return data.rfind(_ZIP_END, max(0, len(data) - _ZIP_END_REACH)) != -1 and _ZIP in data


def _unzip(data: bytes, limit: int) -> bytes:
    out: list[bytes] = []
    left = limit
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist()[:MAX_MEMBERS]:
            if member.is_dir() or left <= 0:
                continue
            if member.compress_type in _ZIP_METHODS:
                with archive.open(member) as handle:
                    content = handle.read(left)
            else:
                content = _bounded_member(data, member, left)
            out.append(content)
            left -= len(content)
    return b"\0".join(out)


def _bounded_member(data: bytes, member: zipfile.ZipInfo, limit: int) -> bytes:
    """A bzip2 or LZMA member, inflated to at most `limit` bytes (`zipfile` inflates
    those without an output bound): its bytes are read after its local header."""
    at = member.header_offset
    if data[at : at + 4] != _ZIP:
        return b""
    name_length, extra_length = struct.unpack_from("<HH", data, at + 26)
    start = at + 30 + name_length + extra_length
    raw = data[start : start + member.compress_size]
    if member.compress_type == zipfile.ZIP_BZIP2:
        return bz2.BZ2Decompressor().decompress(raw, limit)
    if member.compress_type != zipfile.ZIP_LZMA or len(raw) < 9:
        return b""
    # zip's LZMA: a version, the properties' size, then LZMA1 properties (lc, lp and pb
    # in one byte, the dictionary size) and the raw stream.
    size = int.from_bytes(raw[2:4], "little")
    props = raw[4 : 4 + size]
    if len(props) < 5:
        return b""
    pb, rest = divmod(props[0], 45)
    lp, lc = divmod(rest, 9)
    dictionary = int.from_bytes(props[1:5], "little")
    options = {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dictionary}
    stream = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[options])
    return stream.decompress(raw[4 + size :], limit)


def _untar(data: bytes, limit: int) -> bytes | None:
    """The members' contents, or None if `data` is no readable tar archive."""
    # Loaded with the first tar archive: 0.3 MiB every proxy would hold otherwise.
    import tarfile

    out: list[bytes] = []
    left = limit
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for count, member in enumerate(archive):
                if count >= MAX_MEMBERS or left <= 0:
                    break
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is not None:
                    content = handle.read(left)
                    out.append(content)
                    left -= len(content)
    except tarfile.TarError:
        return None
    return b"\0".join(out)


def _raw_deflate(data: bytes, limit: int) -> bytes:
    decomp = zlib.decompressobj(-zlib.MAX_WBITS)
    out = decomp.decompress(data[:_PROBE], limit)  # random bytes fail in the first few
    if not decomp.eof and len(out) < limit:
        out += decomp.decompress(decomp.unconsumed_tail + data[_PROBE:], limit - len(out))
    return out if (decomp.eof or len(out) >= limit) and is_text(out[:256]) else b""


def _brotli(data: bytes, limit: int) -> bytes:
    out, finished, failed_at = _brotli_feed(data, limit, _CHUNK)
    if failed_at is not None and failed_at < _REFEED_BELOW and is_text(out[:256]):
        # The stream ended inside the slice that failed, bytes after it (a NUL-joined
        # view) making the slice an error: feed that much again a byte at a time.
        out, finished, _ = _brotli_feed(data[: failed_at + _CHUNK], limit, 1)
    done = finished or len(out) >= limit
    return out[:limit] if done and is_text(out[:256]) else b""


def _brotli_feed(data: bytes, limit: int, step: int) -> tuple[bytes, bool, int | None]:
    """(output, whether the stream finished, where a slice failed)."""
    decomp = brotli.Decompressor()
    out = bytearray()
    # The binding has no output cap; small input slices bound each step's output.
    for start in range(0, len(data), step):
        try:
            out += decomp.process(data[start : start + step])
        except brotli.error:
            return bytes(out), decomp.is_finished(), start
        if len(out) >= limit or decomp.is_finished():
            break
    return bytes(out), decomp.is_finished(), None


_HEADERLESS: tuple[tuple[str, Callable[[bytes, int], bytes]], ...] = (
    ("deflate", _raw_deflate),
    ("br", _brotli),
)


def sniff_compression(data: bytes) -> str | None:
    """Compression recognisable from the first bytes (brotli has no magic)."""
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if len(data) >= 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0:
        return "deflate"
    return None


def decode_content(data: bytes, encoding: str, limit: int) -> bytes | None:
    """Undo a `Content-Encoding` (possibly a comma list), producing at most `limit`
    bytes; None when the encoding is unknown or the data does not decode."""
    for name in reversed([part.strip().lower() for part in encoding.split(",")]):
        if name in ("", "identity"):
            continue
        decoder = _DECODERS.get(name)
        if decoder is None:
            return None
        try:
            data = decoder(data, limit)
        except (zlib.error, brotli.error, zstandard.ZstdError, EOFError, OSError):
            return None
    return data


def _gzip(data: bytes, limit: int) -> bytes:
    return _zlib(data, limit, 16 + zlib.MAX_WBITS)


def _deflate(data: bytes, limit: int) -> bytes:
    # `Content-Encoding: deflate` is zlib-wrapped by the spec, raw in practice.
    try:
        return _zlib(data, limit, zlib.MAX_WBITS)
    except zlib.error:
        return _zlib(data, limit, -zlib.MAX_WBITS)


def _zlib(data: bytes, limit: int, wbits: int) -> bytes:
    return zlib.decompressobj(wbits).decompress(data, limit)


def _brotli_capped(data: bytes, limit: int) -> bytes:
    # The binding has no output cap; small input chunks bound each step's output.
    decoder = brotli.Decompressor()
    out = bytearray()
    for start in range(0, len(data), _CONTENT_CHUNK):
        out += decoder.process(data[start : start + _CONTENT_CHUNK])
        if len(out) >= limit:
            break
    return bytes(out[:limit])


def _zstd(data: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
    return reader.read(limit)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli_capped,
    "zstd": _zstd,
}
