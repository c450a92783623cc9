from __future__ import annotations

import base64
import binascii
import json
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.scrubbing.spellings import Scrubber, StreamScrubber
from tests.unit.policy.leaks.conftest import ANTHROPIC, PLACEHOLDER


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber({ANTHROPIC: PLACEHOLDER})


def test_raw_value_becomes_the_placeholder(scrubber: Scrubber) -> None:
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
def test_encoded_value_becomes_the_encoded_placeholder(scrubber: Scrubber, encode, decode) -> None:  # type: ignore[no-untyped-def]
    assert decode(scrubber.scrub(encode(ANTHROPIC))) == PLACEHOLDER


@pytest.mark.parametrize("prefix", [b"", b"u:", b"ab:", b"abc:"])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_runs_are_reencoded_and_still_decode(
    scrubber: Scrubber, prefix: bytes, urlsafe: bool
) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    decode = base64.urlsafe_b64decode if urlsafe else base64.b64decode
    run = encode(prefix + ANTHROPIC + b":tail")
    scrubbed = scrubber.scrub(b'{"auth":"' + run + b'"}')
    inner = json.loads(scrubbed)["auth"].encode()
    assert decode(inner) == prefix + PLACEHOLDER + b":tail"


def test_base64_inside_a_misaligned_run_is_still_removed(scrubber: Scrubber) -> None:
    run = b"Q" + base64.b64encode(b"z" + ANTHROPIC)  # read from the run start, it misdecodes
    assert base64.b64encode(b"z" + ANTHROPIC)[2:60] not in scrubber.scrub(run)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 50, 200])
def test_stream_scrubbing_holds_values_cut_by_chunk_boundaries(
    scrubber: Scrubber, size: int
) -> None:
    events = b"".join(
        b"data: " + json.dumps({"delta": part}).encode() + b"\n\n"
        for part in ["echo ", ANTHROPIC.decode(), " and ", ANTHROPIC.hex()]
    )
    stream = StreamScrubber(scrubber)
    out = b"".join(stream.feed(events[i : i + size]) for i in range(0, len(events), size))
    out += stream.flush()
    assert ANTHROPIC not in out and ANTHROPIC.hex().encode() not in out
    assert out.count(PLACEHOLDER) == 1 and PLACEHOLDER.hex().encode() in out


def test_nothing_to_scrub_passes_data_through() -> None:
    empty = Scrubber({})
    assert not empty
    assert StreamScrubber(empty).feed(b"abc") == b"abc"
    assert Scrubber({b"short": b"{{X}}"}).scrub(b"short") == b"short"


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
    noise=st.binary(max_size=40),
)
def test_stream_scrubbing_equals_whole_body_scrubbing_for_any_chunking(
    cuts: list[int], noise: bytes
) -> None:
    scrubber = Scrubber({ANTHROPIC: PLACEHOLDER})
    body = noise + ANTHROPIC + noise + binascii.hexlify(ANTHROPIC) + noise + ANTHROPIC[::-1]
    stream, out, at = StreamScrubber(scrubber), b"", 0
    for size in cuts:
        out += stream.feed(body[at : at + size])
        at += size
    out += stream.feed(body[at:]) + stream.flush()
    assert out == scrubber.scrub_part(body)
    assert ANTHROPIC not in out
