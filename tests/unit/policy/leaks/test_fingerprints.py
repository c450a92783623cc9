"""Name fingerprints: protected values found in DNS names, the values never in the file."""

from __future__ import annotations

import base64
import math
import random
import re

import pytest

from agentcage.policy.canaries import KINDS, canary_value
from agentcage.policy.leaks.fingerprints import (
    BLOCK_BITS,
    MIN_FORM,
    NameFingerprints,
    blocks,
    canonical_name,
    fingerprint_values,
    spellings,
)
from agentcage.policy.leaks.protected import Protected
from tests.unit.dns.test_tunnel import NORMAL

KEY = bytes(range(32))
INJECTED = "sk-ant-api03-" + "Q7vX2mR9kLp4Tz8Wc1Nb6Hy3Jd5Fs0Ga" * 2 + "AA"
CANARIES = [
    Protected(f"C_{kind}", canary_value(kind, f"C_{kind}", b"seed").encode(), "canary")
    for kind in KINDS
]
VALUES = [
    Protected("ANTHROPIC_API_KEY", INJECTED.encode(), "injected", ("api.anthropic.com",)),
    Protected("DB_PASSWORD", b"db-pass-9f3Kq27LmZx81VbTw04Rys", "known"),
    *CANARIES,
]
FINGERPRINTS = fingerprint_values(VALUES, KEY)


def _labels(text: str, zone: str = "x.workers.dev", size: int = 60) -> str:
    clean = re.sub(r"[^a-z0-9-]", "", text.lower())
    return ".".join([clean[i : i + size] for i in range(0, len(clean), size)] + [zone])


@pytest.mark.parametrize("value", VALUES, ids=lambda v: v.rule)
def test_every_value_is_found_in_every_spelling(value: Protected) -> None:
    raw = value.value
    b32 = base64.b32encode(b"\x07\x07" + raw).decode()
    b32hex = base64.b32hexencode(b"\x09" + raw).decode()
    b64 = base64.urlsafe_b64encode(b"\x05" + raw).decode()
    for spelling in (
        raw.decode(),
        raw.decode()[::-1],
        raw.hex(),
        raw.hex().upper(),
        b32,
        b32hex,
        b64,
    ):
        for size in (63, 17, 5):  # one label, or spread over many
            assert FINGERPRINTS.match(_labels(spelling, size=size)) == value.rule, spelling


def test_a_piece_two_blocks_long_is_always_found() -> None:
    canon = canonical_name(INJECTED)
    longest_block = max(len(canonical_name(b)) for b in blocks(INJECTED.encode()))
    for start in range(len(canon) - 2 * longest_block):
        piece = canon[start : start + 2 * longest_block].decode()
        assert FINGERPRINTS.match(_labels(piece)) == "injected:ANTHROPIC_API_KEY"


@pytest.mark.parametrize(("qname", "entry"), NORMAL)
def test_normal_names_match_nothing(qname: str, entry: str) -> None:
    assert FINGERPRINTS.match(qname) is None


def test_random_names_match_nothing() -> None:
    rng = random.Random(5)
    for _ in range(300):
        label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(60))
        assert FINGERPRINTS.match(f"{label}.{label[::-1]}.example.com") is None


def _density(value: bytes) -> float:
    chars = set(canonical_name(value).decode())
    if chars <= set("0123456789abcdef"):
        return 4.0
    return 5.0 if chars <= set("abcdefghijklmnopqrstuvwxyz234567") else math.log2(36)


def test_blocks_are_consecutive_and_each_carries_enough_entropy() -> None:
    for value in VALUES:
        pieces = blocks(value.value)
        assert pieces, value.rule
        *consecutive, tail = pieces
        assert b"".join(consecutive) == value.value[: sum(map(len, consecutive))]
        assert value.value.endswith(tail)  # the last one ends with the value
        for piece in pieces:
            assert len(canonical_name(piece)) * _density(value.value) >= BLOCK_BITS
    # Consecutive, not overlapping: knowing one block tells nothing about the next.
    assert blocks(b"0123456789abcdef" * 4, bits=64.0) == [b"0123456789abcdef"] * 4


def test_short_values_and_placeholders_are_not_fingerprinted() -> None:
    fingerprints = fingerprint_values(
        [
            Protected("PIN", b"12345678", "known"),
            Protected("KEY", b"{{ANTHROPIC_API_KEY}}", "placeholder"),
        ],
        KEY,
    )
    assert fingerprints.tables == {} and fingerprints.skipped == ("known:PIN",)


def test_spellings_are_canonical_and_long_enough() -> None:
    for form in spellings(b"Q7vX2mR9kLp4Tz8"):
        assert re.fullmatch(rb"[a-z0-9]+", form) and len(form) >= MIN_FORM


def test_the_file_round_trips_and_holds_no_value() -> None:
    text = FINGERPRINTS.to_json()
    parsed = NameFingerprints.from_json(text)
    assert parsed.tables == FINGERPRINTS.tables and parsed.key == KEY
    assert parsed.match(_labels(INJECTED)) == "injected:ANTHROPIC_API_KEY"
    for value in VALUES:
        canon = canonical_name(value.value).decode()
        assert not any(canon[i : i + 6] in text for i in range(len(canon) - 5)), value.rule
    assert "Q7vX2mR9" not in repr(FINGERPRINTS)


def test_each_file_has_its_own_key() -> None:
    first, second = fingerprint_values(VALUES), fingerprint_values(VALUES)
    assert first.key != second.key
    assert set(first.tables[12]) != set(second.tables[12])
    assert second.match(_labels(INJECTED)) == "injected:ANTHROPIC_API_KEY"


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"v": 2, "hash": "hmac-sha256-64", "key": "", "fingerprints": {}}',
        '{"v": 1, "hash": "hmac-sha256-64", "key": "00", "fingerprints": {}}',
        '{"v": 1, "hash": "hmac-sha256-64", "key": "' + "00" * 32 + '", "fingerprints": []}',
        '{"v": 1, "hash": "hmac-sha256-64", "key": "' + "00" * 32 + '", "fingerprints": {"3": {}}}',
        '{"v": 1, "hash": "hmac-sha256-64", "key": "'
        + "00" * 32
        + '", "fingerprints": {"12": {"00": "known:X"}}}',
        '{"v": 1, "hash": "hmac-sha256-64", "key": "'
        + "00" * 32
        + '", "fingerprints": {"12": {"'
        + "00" * 8
        + '": 5}}}',
    ],
)
def test_a_damaged_file_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        NameFingerprints.from_json(text)
