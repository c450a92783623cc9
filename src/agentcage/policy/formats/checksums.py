"""The checksums that make a number or a key more than a look-alike.

Each answers one question about bytes already matched by a format's regex: a card
number's Luhn digit, an IBAN's mod-97, a Base58Check payload (Bitcoin WIF keys,
extended keys, addresses), a bech32/bech32m address and a BIP-39 mnemonic. A value
that fails its checksum is a typo or a random string, not a credential, so these
keep formats without a fixed prefix (card numbers, seeds) from matching ordinary
numbers and words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_BASE58 = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_VALUE = {c: i for i, c in enumerate(_BASE58)}
_BECH32 = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_VALUE = {c: i for i, c in enumerate(_BECH32)}
_BECH32_CONSTANTS = (1, 0x2BC830A3)  # bech32 (BIP-173), bech32m (BIP-350)
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def luhn(digits: bytes) -> bool:
    """The Luhn check digit of a card number (ASCII digits only) is right."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = char - 0x30
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_mod97(iban: bytes) -> bool:
    """ISO 13616: the country code and check digits moved to the end, letters as
    10..35, the number is 1 modulo 97."""
    moved = iban[4:] + iban[:4]
    remainder = 0
    for char in moved:
        value = char - 0x30 if char <= 0x39 else char - 0x41 + 10
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return remainder == 1


def base58check(text: bytes) -> bytes | None:
    """The payload of a Base58Check string (version byte included), or None when a
    character is outside the alphabet or the 4-byte double-SHA-256 checksum is wrong."""
    number = 0
    for char in text:
        value = _BASE58_VALUE.get(char)
        if value is None:
            return None
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip(b"1"))
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    decoded = b"\x00" * zeros + raw
    if len(decoded) < 5:
        return None
    payload, check = decoded[:-4], decoded[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != check:
        return None
    return payload


def bech32_valid(text: bytes) -> bool:
    """A bech32 or bech32m string (BIP-173/350) with a valid checksum, one case."""
    if text.lower() != text and text.upper() != text:
        return False
    text = text.lower()
    sep = text.rfind(b"1")
    if sep < 1 or len(text) - sep < 7:
        return False
    values = []
    for char in text[sep + 1 :]:
        value = _BECH32_VALUE.get(char)
        if value is None:
            return False
        values.append(value)
    prefix = text[:sep]
    expanded = [c >> 5 for c in prefix] + [0] + [c & 31 for c in prefix]
    return _polymod(expanded + values) in _BECH32_CONSTANTS


def _polymod(values: Sequence[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if (top >> bit) & 1:
                check ^= generator
    return check


def mnemonic_bytes(indexes: Sequence[int]) -> bytes | None:
    """The bytes (the "entropy") a BIP-39 mnemonic encodes (word indexes 0..2047), or None when its
    checksum bits (the first bits of SHA-256 of the entropy) are wrong."""
    if len(indexes) not in (12, 15, 18, 21, 24):
        return None
    bits = 0
    for index in indexes:
        bits = bits << 11 | index
    total = len(indexes) * 11
    check_bits = total // 33
    entropy_bits = total - check_bits
    entropy = (bits >> check_bits).to_bytes(entropy_bits // 8, "big")
    expected = hashlib.sha256(entropy).digest()[0] >> (8 - check_bits)
    return entropy if bits & ((1 << check_bits) - 1) == expected else None
