"""A bounded recursive decoder: the views of a payload an inspector should scan.

An agent can wrap a secret in layers: base64 of gzip, hex inside a JSON escape,
percent-encoding of base64. `Unwrapper.views` peels up to `max_depth` layers,
breadth first, and yields each decoded view once. Every decoder is bounded: the
total bytes produced across all views is capped by `budget`, decompression stops
at the remaining budget (so a zip bomb costs at most the budget), and at most
`max_views` views are returned. Input that decodes to nothing new is dropped.
"""

from __future__ import annotations

import binascii
import io
import re
import urllib.parse
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import brotli
import zstandard

_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(rb"[0-9A-Fa-f]{16,}")
_PERCENT = re.compile(rb"%[0-9A-Fa-f]{2}")
_ESCAPE = re.compile(rb"\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})")
_URLSAFE = bytes.maketrans(b"-_", b"+/")
# Runs this long are decoded at all four alignments; longer ones (images, packs)
# only where they start, so a multi-megabyte blob is decoded once.
_ALIGN_ALL_BELOW = 4096
_BROTLI_CHUNK = 256


@dataclass(frozen=True, slots=True)
class View:
    """Bytes to scan, and the decoders that produced them (outermost first)."""

    data: bytes
    layers: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "+".join(self.layers) or "raw"


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 3
    budget: int = 32 * 1024 * 1024  # bytes produced by decoding, all views together
    max_views: int = 64
    min_run: int = 16  # shortest base64 / hex run worth decoding


class _Budget:
    def __init__(self, total: int) -> None:
        self.left = total

    def take(self, data: bytes) -> bytes | None:
        if not data or len(data) > self.left:
            return None
        self.left -= len(data)
        return data


class Unwrapper:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._steps: tuple[tuple[str, Callable[[bytes, int], bytes]], ...] = (
            ("decompress", self._decompress_sniffed),
            ("percent", _percent),
            ("escape", _escapes),
            ("base64", self._base64_runs),
            ("hex", self._hex_runs),
        )

    def views(self, data: bytes, content_encoding: str = "") -> list[View]:
        """`data` itself, then each decoded view, at most `max_depth` layers deep."""
        budget = _Budget(self.limits.budget)
        out = [View(data)]
        seen = {data}
        if content_encoding and content_encoding != "identity":
            decoded = decode_content(data, content_encoding, budget.left)
            if decoded is not None and budget.take(decoded) is not None:
                out.append(View(decoded, (content_encoding,)))
                seen.add(decoded)
        queue = deque(out)
        while queue and len(out) < self.limits.max_views:
            view = queue.popleft()
            if len(view.layers) >= self.limits.max_depth:
                continue
            for name, step in self._steps:
                if budget.left <= 0 or len(out) >= self.limits.max_views:
                    break
                try:
                    produced = step(view.data, budget.left)
                except (ValueError, zlib.error, brotli.error, zstandard.ZstdError):
                    continue
                if produced in seen or budget.take(produced) is None:
                    continue
                seen.add(produced)
                child = View(produced, (*view.layers, name))
                out.append(child)
                queue.append(child)
        return out

    def _decompress_sniffed(self, data: bytes, room: int) -> bytes:
        kind = sniff_compression(data)
        if kind is None:
            return b""
        return decode_content(data, kind, room) or b""

    def _base64_runs(self, data: bytes, room: int) -> bytes:
        return _decode_runs(_BASE64_RUN, data, room, self.limits.min_run, _b64_at)

    def _hex_runs(self, data: bytes, room: int) -> bytes:
        return _decode_runs(_HEX_RUN, data, room, self.limits.min_run, _hex_at)


def _decode_runs(
    pattern: re.Pattern[bytes],
    data: bytes,
    room: int,
    min_run: int,
    decode: Callable[[bytes, int], bytes],
) -> bytes:
    """Decode every run of `pattern` (at each alignment if short), NUL-joined."""
    pieces: list[bytes] = []
    size = 0
    for match in pattern.finditer(data):
        run = match.group()
        if len(run) < min_run:
            continue
        offsets = range(4) if len(run) < _ALIGN_ALL_BELOW else range(1)
        for offset in offsets:
            piece = decode(run, offset)
            if piece:
                pieces.append(piece)
                size += len(piece) + 1
        if size >= room:
            break
    return b"\0".join(pieces)[:room]


def _b64_at(run: bytes, offset: int) -> bytes:
    body = run.rstrip(b"=")[offset:].translate(_URLSAFE)
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        return binascii.a2b_base64(body + b"=" * (-len(body) % 4))
    except binascii.Error:
        return b""


def _hex_at(run: bytes, offset: int) -> bytes:
    if offset > 1:
        return b""
    body = run[offset:]
    body = body[: len(body) - len(body) % 2]
    return binascii.unhexlify(body)


def _percent(data: bytes, room: int) -> bytes:
    if not _PERCENT.search(data):
        return b""
    return urllib.parse.unquote_to_bytes(data)[:room]


def _escapes(data: bytes, room: int) -> bytes:
    if b"\\" not in data or not _ESCAPE.search(data):
        return b""

    def one(match: re.Match[bytes]) -> bytes:
        if match.group(1):
            return chr(int(match.group(1), 16)).encode("utf-8", "surrogatepass")
        return bytes([int(match.group(2), 16)])

    return _ESCAPE.sub(one, data)[:room]


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


def _brotli(data: bytes, limit: int) -> bytes:
    # The binding has no output cap; small input chunks bound each step's output.
    decoder = brotli.Decompressor()
    out = bytearray()
    for start in range(0, len(data), _BROTLI_CHUNK):
        out += decoder.process(data[start : start + _BROTLI_CHUNK])
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
    "br": _brotli,
    "zstd": _zstd,
}
