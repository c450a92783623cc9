"""Undo what an agent may wrap a payload in: Content-Encoding, percent-encoding, Basic auth.

Decompression is bounded: output beyond `limit` bytes raises `DecodeError`, so a
small compressed body cannot expand into gigabytes inside the proxy.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from urllib.parse import unquote_to_bytes

import brotli
import zstandard

DEFAULT_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024
_BROTLI_SLICE = 32
_ZSTD_MIN_SLICE = 32
_ZSTD_MAX_RATIO = 32768


class DecodeError(ValueError):
    """The body cannot be decoded (unknown or corrupt encoding, or too large decoded)."""


def parse_encodings(header: str) -> list[str]:
    """`Content-Encoding: gzip, br` -> ["gzip", "br"] (in the order they were applied)."""
    codings = [part.strip().lower() for part in header.split(",")]
    return [c for c in codings if c and c != "identity"]


def decode_body(body: bytes, content_encoding: str, limit: int = DEFAULT_LIMIT) -> bytes:
    """Undo every coding in `content_encoding`, last applied first, at most `limit` bytes out."""
    data = body
    for coding in reversed(parse_encodings(content_encoding)):
        data = _decode_one(data, coding, limit)
    return data


def encode_body(body: bytes, content_encoding: str) -> bytes:
    """Apply the codings of `content_encoding` in order (used to re-wrap an edited body)."""
    data = body
    for coding in parse_encodings(content_encoding):
        if coding in ("gzip", "x-gzip"):
            compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
            data = compressor.compress(data) + compressor.flush()
        elif coding == "deflate":
            data = zlib.compress(data)
        elif coding == "br":
            data = brotli.compress(data)
        elif coding == "zstd":
            data = zstandard.ZstdCompressor().compress(data)
        else:
            raise DecodeError(f"unsupported content-encoding {coding!r}")
    return data


def _decode_one(data: bytes, coding: str, limit: int) -> bytes:
    if coding in ("gzip", "x-gzip"):
        return _zlib(data, 16 + zlib.MAX_WBITS, limit, coding)
    if coding == "deflate":
        # Servers disagree on "deflate": zlib-wrapped per the RFC, or raw; accept both.
        try:
            return _zlib(data, zlib.MAX_WBITS, limit, coding)
        except DecodeError as exc:
            if "larger than" in str(exc):
                raise
            return _zlib(data, -zlib.MAX_WBITS, limit, coding)
    if coding == "br":
        return _brotli(data, limit)
    if coding == "zstd":
        return _zstd(data, limit)
    raise DecodeError(f"unsupported content-encoding {coding!r}")


def _too_large(coding: str, limit: int) -> DecodeError:
    return DecodeError(f"{coding} body decodes to more than {limit} bytes (larger than the limit)")


def _zlib(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    out = bytearray()
    decomp = zlib.decompressobj(wbits)
    pending = data
    try:
        # gzip allows several members back to back; decode each in turn.
        while pending:
            chunk = decomp.decompress(pending, limit + 1 - len(out))
            out += chunk
            if len(out) > limit:
                raise _too_large(coding, limit)
            while decomp.unconsumed_tail:
                out += decomp.decompress(decomp.unconsumed_tail, limit + 1 - len(out))
                if len(out) > limit:
                    raise _too_large(coding, limit)
            if not decomp.eof:
                raise DecodeError(f"{coding} body is truncated")
            pending = decomp.unused_data
            if pending:
                decomp = zlib.decompressobj(wbits)
    except zlib.error as exc:
        raise DecodeError(f"{coding} body is corrupt") from exc
    return bytes(out)


def _brotli(data: bytes, limit: int) -> bytes:
    decomp = brotli.Decompressor()
    out = bytearray()
    try:
        # The binding has no output limit and ~25 input bytes can hold a 16 MiB
        # meta-block, so feed small slices: one call overshoots the limit by tens of MB at most.
        for start in range(0, len(data), _BROTLI_SLICE):
            out += decomp.process(data[start : start + _BROTLI_SLICE])
            if len(out) > limit:
                raise _too_large("br", limit)
        if not decomp.is_finished():
            raise DecodeError("br body is truncated")
    except brotli.error as exc:
        raise DecodeError("br body is corrupt") from exc
    return bytes(out)


def _zstd(data: bytes, limit: int) -> bytes:
    out = bytearray()
    pending = data
    try:
        # Frames may follow each other; the decoder stops at the end of each.
        while pending:
            decomp = zstandard.ZstdDecompressor().decompressobj()
            start = 0
            while start < len(pending) and not decomp.eof:
                # The object has no output limit, and a block of at most 128 KiB
                # takes 4 bytes (32768:1): slices that small stop near the limit.
                size = max(_ZSTD_MIN_SLICE, (limit + 1 - len(out)) // _ZSTD_MAX_RATIO)
                out += decomp.decompress(pending[start : start + size])
                start += size
                if len(out) > limit:
                    raise _too_large("zstd", limit)
            if not decomp.eof:
                raise DecodeError("zstd body is truncated")
            pending = decomp.unused_data + pending[start:]
    except zstandard.ZstdError as exc:
        raise DecodeError("zstd body is corrupt") from exc
    return bytes(out)


def percent_decode(text: str | bytes) -> bytes:
    """Percent-decode (`+` stays `+`); invalid escapes are kept as they are."""
    return unquote_to_bytes(text)


def percent_decode_repeated(text: str | bytes, rounds: int = 3) -> bytes:
    """Decode until stable (or `rounds` times): `%2541` hides `A` behind two layers."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    for _ in range(rounds):
        if b"%" not in data:
            break
        decoded = unquote_to_bytes(data)
        if decoded == data:
            break
        data = decoded
    return data


def basic_credentials(header_value: str) -> str | None:
    """The decoded `user:password` of a Basic authorization value, else None."""
    scheme, _, encoded = header_value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
