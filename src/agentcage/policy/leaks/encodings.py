"""Every spelling of a secret we look for, and the canonical form they are matched in.

A secret can leave as itself or re-encoded. Rather than decode every haystack in
every possible way, we encode each secret once, at startup, in each reversible
form an agent could use, and search for all of them at once. Everything is
compared in *canonical* form: separator characters removed. Removing separators
is a homomorphism (canon(a + b) == canon(a) + canon(b)), so a variant found in
a haystack is also found in the canonical haystack, and a secret with `-`, `.`,
spaces or newlines inserted between its characters is found too. Case is folded
the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from dataclasses import dataclass

from agentcage.policy.accelerator import native

# Characters an agent can sprinkle into a value without changing what it carries.
# `+ / - _ =` are included so standard and URL-safe base64 canonicalise alike.
SEPARATORS = b"-._ \t\r\n,:;|/+=\"'`\\~*!"


_ESCAPED_SEPARATOR = re.compile(rb"\\[nrt]")
_FOLD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_KEEP = bytes(byte not in SEPARATORS for byte in range(256))


def canonical(data: bytes) -> bytes:
    """`data` lower-cased and without separator characters (C speed: one `translate`).

    Case is folded so that a value in any mix of case (hex in capitals, a swapped
    case, a host name) is still found; a protected value is long and random enough
    that folding does not make ordinary text match it.

    Inside a JSON or C string a newline separator is written `\\n`: the backslash is
    a separator, and the escape letters of `\\n`, `\\r` and `\\t` go with it.
    """
    if native is not None:
        # 3x faster on prose: deleting bytes mispredicts a branch at every word.
        return native.canonical(data, _FOLD, _KEEP)
    return python_canonical(data)


def python_canonical(data: bytes) -> bytes:
    """`canonical` without the accelerator (and the definition it is tested against)."""
    if b"\\" in data:
        # One regex pass: three two-byte `replace` scans cost ~2 ms/MiB each.
        data = _ESCAPED_SEPARATOR.sub(b"", data)
    return data.translate(_FOLD, SEPARATORS)


@dataclass(frozen=True, slots=True)
class Variant:
    """One spelling of a secret: `technique` names the encoding, e.g. `base64@1`."""

    technique: str
    text: bytes


def variants(value: bytes) -> list[Variant]:
    """All spellings of `value` that a matcher should recognise, raw first."""
    out = [Variant("raw", value), Variant("reversed", value[::-1])]
    # Host names and DNS labels arrive lower-cased; a lower-cased key still leaks most of it.
    out.append(Variant("lowercase", value.lower()))
    out.append(Variant("rot13", value.translate(_ROT13)))
    out += _html_entities(value)
    out += _hex(value)
    out += _percent(value)
    out += _json_escapes(value)
    out += _base64_all(value)
    out += _base32_all(value)
    return out


_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_ROT13 = bytes.maketrans(_LOWER + _UPPER, _LOWER[13:] + _LOWER[:13] + _UPPER[13:] + _UPPER[:13])


def _html_entities(value: bytes) -> list[Variant]:
    return [
        Variant("html-entity", b"".join(b"&#%d;" % byte for byte in value)),
        Variant("html-entity", b"".join(b"&#x%x;" % byte for byte in value)),
    ]


def _hex(value: bytes) -> list[Variant]:
    lower = binascii.hexlify(value)
    return [
        Variant("hex", lower),
        Variant("hex", lower.upper()),
        Variant("hex-escape", b"".join(b"\\x%02x" % byte for byte in value)),
    ]


def _percent(value: bytes) -> list[Variant]:
    minimal = urllib.parse.quote_from_bytes(value, safe="").encode()
    every_lower = b"".join(b"%%%02x" % byte for byte in value)
    every_upper = every_lower.upper()
    return [
        Variant("percent", minimal),
        Variant("percent", every_lower),
        Variant("percent", every_upper),
        Variant("percent2", minimal.replace(b"%", b"%25")),
        Variant("percent2", every_upper.replace(b"%", b"%25")),
        Variant("percent2", every_lower.replace(b"%", b"%25")),
    ]


def _json_escapes(value: bytes) -> list[Variant]:
    text = value.decode("utf-8", "replace")
    every = "".join(f"\\u{ord(ch):04x}" for ch in text).encode()
    plain = json.dumps(text)[1:-1]
    return [
        Variant("json", plain.encode()),
        # PHP and some Java encoders also escape `/`.
        Variant("json", plain.replace("/", "\\/").encode()),
        Variant("unicode-escape", every),
        Variant("unicode-escape", every.upper().replace(b"\\U", b"\\u")),
    ]


def _base64_all(value: bytes) -> list[Variant]:
    out: list[Variant] = []
    for offset in range(3):
        core = base64_core(value, offset)
        if core:
            # URL-safe and standard alphabets differ only in `+/` vs `-_`, which
            # are separators, so one canonical form covers both.
            out.append(Variant(f"base64@{offset}", core))
            out.append(Variant(f"base64url@{offset}", core.replace(b"+", b"-").replace(b"/", b"_")))
    return out


def _base32_all(value: bytes) -> list[Variant]:
    # DNS tunnels favour base32: case-insensitive and label-safe.
    out: list[Variant] = []
    for offset in range(5):
        core = base32_core(value, offset)
        if core:
            out.append(Variant(f"base32@{offset}", core))
            out.append(Variant(f"base32@{offset}", core.lower()))
    return out


def base64_core(value: bytes, offset: int) -> bytes:
    """The base64 characters determined by `value` alone when it starts `offset`
    bytes into a 3-byte group: what appears whatever surrounds it."""
    if offset not in range(3):
        raise ValueError("offset must be 0, 1 or 2")
    encoded = base64.b64encode(b"\0" * offset + value + b"\0\0")
    return _core(encoded, offset, len(value), 6)


def base32_core(value: bytes, offset: int) -> bytes:
    """Like `base64_core` for base32 (5-byte groups, 5 bits a character)."""
    if offset not in range(5):
        raise ValueError("offset must be 0 to 4")
    encoded = base64.b32encode(b"\0" * offset + value + b"\0" * 4)
    return _core(encoded, offset, len(value), 5)


def _core(encoded: bytes, offset: int, length: int, bits: int) -> bytes:
    # Character j covers bits [bits*j, bits*(j+1)); keep those inside the value's bits.
    start = -(-8 * offset // bits)
    end = (8 * (offset + length)) // bits
    return encoded[start:end]
