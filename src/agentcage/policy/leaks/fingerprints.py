"""Keyed fingerprints of protected values, to find them in DNS names without holding them.

The DNS sidecar must refuse a name that carries a canary, a known value or an injected
key, yet it must never see those values. The proxy, which has them, publishes
fingerprints: HMAC-SHA256 under a random per-file key, truncated to 64 bits, of pieces
of each value in each spelling a DNS name can carry. The sidecar hashes every
substring of the same lengths of a query name and looks each up.

Blocks, not sliding windows. Fingerprints of every overlapping window would give the
value away to anyone holding the file, one character at a time: neighbouring windows
share all but one character, so once one window is known (a public prefix such as
`sk-ant-api03-` gives the first) the next costs ~36 guesses. Here a value is cut into
consecutive byte blocks of at least `BLOCK_BITS` estimated bits each, plus one block
aligned to its end, and every spelling is taken of whole blocks, at the same byte
boundaries. Recovering a block from the file then costs ~2^60 hashes whatever else is
known. The price: a name is caught only when it carries a whole block, which a piece
of the value two blocks long (about 24 characters of a random key) always does.

Spellings, all compared in canonical form (lower case, letters and digits only, so
label dots, hyphens and case change nothing): the value itself, reversed, hex, base32
and base32hex, base64 (each at every alignment a block can have in a longer encoded
string). Values or forms whose blocks would be too short are left out (`skipped`).
"""

from __future__ import annotations

import binascii
import hmac
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agentcage.policy.leaks.encodings import base32_core, base64_core
from agentcage.policy.leaks.protected import Protected

VERSION = 1
HASH = "hmac-sha256-64"
KEY_BYTES = 32
DIGEST_BYTES = 8
# 2^60 HMAC-SHA256 evaluations are years of a GPU (~5e9/s): what a block must cost.
BLOCK_BITS = 60.0
# No spelling shorter than this is fingerprinted: short strings occur in normal names.
MIN_FORM = 12
_NOT_CANONICAL = re.compile(rb"[^a-z0-9]+")
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_B32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_B32HEX = bytes.maketrans(_B32, b"0123456789ABCDEFGHIJKLMNOPQRSTUV")
_FINGERPRINTED = ("injected", "known", "canary")  # placeholders are the agent's own


def canonical_name(text: str | bytes) -> bytes:
    """Lower case, letters and digits only: how names and spellings are compared."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    return _NOT_CANONICAL.sub(b"", raw.lower())


def _bits_per_character(value: bytes) -> float:
    """A cautious estimate of the entropy of each letter or digit of `value`.

    Judged from its canonical alphabet, the cheapest one to guess in: a case-folded
    key is guessed in 36 symbols, whatever case it had.
    """
    chars = set(canonical_name(value))
    if chars <= set(b"0123456789"):
        return math.log2(10)
    if chars <= set(b"0123456789abcdef"):
        return 4.0
    if chars <= set(b"abcdefghijklmnopqrstuvwxyz234567"):
        return 5.0
    return math.log2(36)


def blocks(value: bytes, bits: float = BLOCK_BITS) -> list[bytes]:
    """Consecutive pieces of `value` of at least `bits` each, and one ending with it.

    Separators and other non-alphanumeric bytes count for nothing. A value too short
    for one block has none.
    """
    density = _bits_per_character(value)
    out: list[bytes] = []
    start, total = 0, 0.0
    for index, byte in enumerate(value):
        total += density if byte in _ALNUM else 0.0
        if total >= bits:
            out.append(value[start : index + 1])
            start, total = index + 1, 0.0
    if out and start < len(value):
        total = 0.0
        for index in range(len(value) - 1, -1, -1):
            total += density if value[index] in _ALNUM else 0.0
            if total >= bits:
                out.append(value[index:])
                break
    return out


def spellings(block: bytes) -> set[bytes]:
    """Every canonical spelling of `block` a DNS name can carry."""
    raw = canonical_name(block)
    forms = {raw, raw[::-1], binascii.hexlify(block)}
    for offset in range(5):
        core = base32_core(block, offset)
        forms.add(canonical_name(core))
        forms.add(canonical_name(core.translate(_TO_B32HEX)))
    for offset in range(3):
        forms.add(canonical_name(base64_core(block, offset)))
    return {form for form in forms if len(form) >= MIN_FORM}


@dataclass(frozen=True)
class NameFingerprints:
    """Fingerprint tables by piece length; `match` tells which value a name carries."""

    key: bytes
    tables: Mapping[int, Mapping[bytes, str]]
    skipped: tuple[str, ...] = ()  # rules of values too short to fingerprint
    _lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lengths", tuple(sorted(self.tables)))

    def __repr__(self) -> str:
        count = sum(len(table) for table in self.tables.values())
        return f"NameFingerprints({count} fingerprints, {len(self.tables)} lengths)"

    def match(self, name: str) -> str | None:
        """The rule (`role:NAME`) of a protected value carried by `name`, if any."""
        text = canonical_name(name)
        for length in self._lengths:
            if length > len(text):
                break
            table = self.tables[length]
            for start in range(len(text) - length + 1):
                rule = table.get(fingerprint(self.key, text[start : start + length]))
                if rule is not None:
                    return rule
        return None

    def to_json(self) -> str:
        tables = {
            str(length): {digest.hex(): rule for digest, rule in sorted(table.items())}
            for length, table in sorted(self.tables.items())
        }
        data = {"v": VERSION, "hash": HASH, "key": self.key.hex(), "fingerprints": tables}
        return json.dumps(data, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NameFingerprints:
        """Parse a fingerprint file; `ValueError` saying what is wrong with it."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != VERSION or data.get("hash") != HASH:
            raise ValueError(f"expected a version {VERSION} {HASH} fingerprint object")
        key = bytes.fromhex(_string(data.get("key"), "key"))
        if len(key) != KEY_BYTES:
            raise ValueError(f"the key must be {KEY_BYTES} bytes")
        raw_tables = data.get("fingerprints")
        if not isinstance(raw_tables, dict):
            raise ValueError("'fingerprints' must be an object")
        tables: dict[int, dict[bytes, str]] = {}
        for length, entries in raw_tables.items():
            if not length.isdigit() or not MIN_FORM <= int(length) <= 255:
                raise ValueError(f"bad piece length {length!r}")
            if not isinstance(entries, dict):
                raise ValueError(f"fingerprints of length {length} must be an object")
            table = tables.setdefault(int(length), {})
            for digest, rule in entries.items():
                raw = bytes.fromhex(digest)
                if len(raw) != DIGEST_BYTES:
                    raise ValueError(f"fingerprint {digest!r} is not {DIGEST_BYTES} bytes")
                table[raw] = _string(rule, "rule")
        return cls(key, tables)


def fingerprint(key: bytes, piece: bytes) -> bytes:
    return hmac.digest(key, piece, "sha256")[:DIGEST_BYTES]


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return value


def fingerprint_values(values: Iterable[Protected], key: bytes | None = None) -> NameFingerprints:
    """Fingerprints of every injected, known and canary value (placeholders are not secret)."""
    key = os.urandom(KEY_BYTES) if key is None else key
    tables: dict[int, dict[bytes, str]] = {}
    skipped: list[str] = []
    for value in values:
        if value.role not in _FINGERPRINTED:
            continue
        pieces = blocks(value.value)
        if not pieces:
            skipped.append(value.rule)
        for block in pieces:
            for form in spellings(block):
                tables.setdefault(len(form), {})[fingerprint(key, form)] = value.rule
    return NameFingerprints(key, tables, tuple(skipped))
