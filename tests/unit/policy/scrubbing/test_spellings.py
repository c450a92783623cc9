from __future__ import annotations

import base64
import binascii
import json
import urllib.parse

import pytest

from agentcage.policy.scrubbing.spellings import SpellingScrubber
from tests.unit.policy.leaks.conftest import ANTHROPIC, PLACEHOLDER


@pytest.fixture
def scrubber() -> SpellingScrubber:
    return SpellingScrubber({ANTHROPIC: PLACEHOLDER})


def test_raw_value_becomes_the_placeholder(scrubber: SpellingScrubber) -> None:
    body = b'{"echo": "' + ANTHROPIC + b'"}'
    assert scrubber.scrub(body) == b'{"echo": "' + PLACEHOLDER + b'"}'


@pytest.mark.parametrize(
    ("encode", "decode"),
    [
        (binascii.hexlify, binascii.unhexlify),
        (lambda v: binascii.hexlify(v).upper(), binascii.unhexlify),
        (
            lambda v: urllib.parse.quote_from_bytes(v, safe="").encode(),
            urllib.parse.unquote_to_bytes,
        ),
        (
            lambda v: b'"' + b"".join(b"\\u%04x" % c for c in v) + b'"',
            lambda t: json.loads(t).encode(),
        ),
    ],
    ids=["hex", "HEX", "percent", "json-escaped"],
)
def test_encoded_value_becomes_the_encoded_placeholder(
    scrubber: SpellingScrubber, encode, decode
) -> None:  # type: ignore[no-untyped-def]
    assert decode(scrubber.scrub(encode(ANTHROPIC))) == PLACEHOLDER


@pytest.mark.parametrize("prefix", [b"", b"u:", b"ab:", b"abc:"])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_runs_are_reencoded_and_still_decode(
    scrubber: SpellingScrubber, prefix: bytes, urlsafe: bool
) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    decode = base64.urlsafe_b64decode if urlsafe else base64.b64decode
    run = encode(prefix + ANTHROPIC + b":tail")
    scrubbed = scrubber.scrub(b'{"auth":"' + run + b'"}')
    inner = json.loads(scrubbed)["auth"].encode()
    assert decode(inner) == prefix + PLACEHOLDER + b":tail"


def test_base64_inside_a_misaligned_run_is_still_removed(scrubber: SpellingScrubber) -> None:
    run = b"Q" + base64.b64encode(b"z" + ANTHROPIC)  # read from the run start, it misdecodes
    assert base64.b64encode(b"z" + ANTHROPIC)[2:60] not in scrubber.scrub(run)


def test_nothing_to_scrub_passes_data_through() -> None:
    empty = SpellingScrubber({})
    assert not empty
    assert empty.scrub(b"abc") == b"abc"
    assert SpellingScrubber({b"short": b"{{X}}"}).scrub(b"short") == b"short"
