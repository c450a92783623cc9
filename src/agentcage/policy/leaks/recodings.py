"""Spellings the matcher looks for and nothing else does: ciphers and number codes.

`encodings.variants` are spellings a response scrubber can also write back, one
for one. These are not: a value as its decimal, octal or binary character codes,
under a letter cipher (atbash, rot47, every Caesar shift), with its pairs swapped,
as reversed base64 or hex, in base32hex, uuencode's alphabet, base85 or ascii85, or
as one base36 number. Each is computed once per value, at startup, and goes into
the same automaton as the others, so looking for them costs the automaton a few
more patterns rather than a pass over the data each: they are found in a body of
any size, where the text decoders (`textcodes.py`) stop at 16 KiB.

Spellings compare in canonical form (`encodings.canonical`: lower case, separators
removed), so one spelling covers its separators: `115,107,45`, `115 107 45` and
`[115, 107, 45]` are all the decimal spelling `11510745`. Octal has three: `\\163\\55`
(no padding), `163 055` (three digits) and C's `0163 055`.
"""

from __future__ import annotations

import base64

from agentcage.policy.leaks.encodings import Variant, base32_core, base64_core

_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_ATBASH = bytes.maketrans(_LOWER + _UPPER, _LOWER[::-1] + _UPPER[::-1])
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32HEX = bytes.maketrans(_B32, b"0123456789ABCDEFGHIJKLMNOPQRSTUV")
# uuencode's alphabet: 0x20 + the 6-bit value (space for 0, or a backtick).
_UU = bytes.maketrans(_B64, bytes(range(0x20, 0x60)))
_UU_BACKTICK = bytes.maketrans(_B64, b"`" + bytes(range(0x21, 0x60)))
_BASE36 = b"0123456789abcdefghijklmnopqrstuvwxyz"
# A short word under a letter cipher can spell another word (`cheer` is `jolly` in
# rot7): shorter values are not looked for ciphered.
_CIPHERED_LEAST = 12


def recoded(value: bytes) -> list[Variant]:
    """Every spelling of `value` this module knows, for the matcher's automaton."""
    return [
        *_codes(value),
        *_ciphers(value),
        *_reversed_encodings(value),
        *_base32hex(value),
        *_uuencoded(value),
        *_base85(value),
        Variant("base36", _base36(value)),
    ]


def _codes(value: bytes) -> list[Variant]:
    return [
        Variant("decimal-codes", b"".join(b"%d" % c for c in value)),
        Variant("hex-codes", b"".join(b"0x%02x" % c for c in value)),
        Variant("octal-codes", b"".join(b"%o" % c for c in value)),
        Variant("octal-codes", b"".join(b"%03o" % c for c in value)),
        Variant("octal-codes", b"".join(b"0%o" % c for c in value)),
        Variant("bits", b"".join(format(c, "08b").encode() for c in value)),
        Variant("percent-u", b"".join(b"%%u%04x" % c for c in value)),
    ]


def _ciphers(value: bytes) -> list[Variant]:
    if len(value) < _CIPHERED_LEAST:
        return []
    out = [
        Variant("atbash", value.translate(_ATBASH)),
        Variant("rot47", bytes(33 + (c - 33 + 47) % 94 if 33 <= c <= 126 else c for c in value)),
        # A pair's characters swapped, from the first character or the second.
        Variant("swapped-pairs", _swap_pairs(value)),
        Variant("swapped-pairs", value[:1] + _swap_pairs(value[1:])),
    ]
    for shift in range(1, 26):
        if shift != 13:  # rot13 is an `encodings` spelling
            table = bytes.maketrans(
                _LOWER + _UPPER, _LOWER[shift:] + _LOWER[:shift] + _UPPER[shift:] + _UPPER[:shift]
            )
            out.append(Variant(f"caesar{shift}", value.translate(table)))
    return out


def _swap_pairs(value: bytes) -> bytes:
    even = len(value) - len(value) % 2
    return bytes(value[i ^ 1] for i in range(even)) + value[even:]


def _reversed_encodings(value: bytes) -> list[Variant]:
    out = [Variant("reversed-hex", value.hex().encode()[::-1])]
    for offset in range(3):
        if core := base64_core(value, offset):
            out.append(Variant(f"reversed-base64@{offset}", core[::-1]))
    return out


def _base32hex(value: bytes) -> list[Variant]:
    return [
        Variant(f"base32hex@{offset}", core.translate(_B32HEX))
        for offset in range(5)
        if (core := base32_core(value, offset))
    ]


def _uuencoded(value: bytes) -> list[Variant]:
    """uuencode is base64's bit layout in another alphabet, in lines of 45 bytes
    behind a length character. A line break falls at most once in any 44 bytes, so one
    of their two halves (22 bytes at most) is whole in one line: each is a spelling."""
    size = min(22, len(value) // 2)
    halves = [value[:size], value[size : 2 * size]] if size >= 8 else [value]
    out = []
    for half in halves:
        for offset in range(3):
            if core := base64_core(half, offset):
                out.append(Variant(f"uuencode@{offset}", core.translate(_UU)))
                out.append(Variant(f"uuencode@{offset}", core.translate(_UU_BACKTICK)))
    return out


def _base85(value: bytes) -> list[Variant]:
    """The groups of four bytes wholly inside `value`, at each of the four alignments:
    what any base85 or ascii85 text holding the value contains."""
    out = []
    for skip in range(4):
        whole = (len(value) - skip) // 4 * 4
        if whole >= 8:
            group = value[skip : skip + whole]
            out.append(Variant(f"base85@{skip}", base64.b85encode(group)))
            out.append(Variant(f"ascii85@{skip}", base64.a85encode(group)))
    return out


def _base36(value: bytes) -> bytes:
    number, digits = int.from_bytes(value, "big"), bytearray()
    while number:
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    return bytes(digits[::-1])
