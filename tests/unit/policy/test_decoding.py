from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from agentcage.policy.decoding import (
    DecodeError,
    decode_body,
    encode_body,
    parse_encodings,
    percent_decode,
    percent_decode_repeated,
)
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import policy, request

TEXT = b'{"messages": [{"role": "user", "content": "hello"}]}' * 20


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("gzip", gzip.compress(TEXT, mtime=0)),  # one id in every xdist worker
        ("x-gzip", gzip.compress(TEXT, mtime=0)),
        ("deflate", zlib.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)[2:-4]),  # raw deflate, as some clients send
        ("br", brotli.compress(TEXT)),
        ("zstd", zstandard.ZstdCompressor().compress(TEXT)),
        ("identity", TEXT),
        ("", TEXT),
    ],
)
def test_each_encoding_is_undone(coding: str, encoded: bytes) -> None:
    assert decode_body(encoded, coding) == TEXT


def test_chained_encodings_are_undone_in_reverse() -> None:
    wrapped = brotli.compress(gzip.compress(TEXT))
    assert parse_encodings("gzip, br") == ["gzip", "br"]
    assert decode_body(wrapped, "gzip, br") == TEXT
    assert decode_body(encode_body(TEXT, "gzip, br"), "gzip, br") == TEXT


def test_multi_member_gzip() -> None:
    assert decode_body(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip") == b"abcd"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_bombs_stop_at_the_limit(coding: str) -> None:
    bomb = encode_body(b"\0" * (8 * 1024 * 1024), coding)
    assert len(bomb) < 100_000
    with pytest.raises(DecodeError, match="more than"):
        decode_body(bomb, coding, limit=1024 * 1024)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "compress"])
def test_corrupt_or_unknown_encodings_raise(coding: str) -> None:
    with pytest.raises(DecodeError):
        decode_body(b"this is not compressed at all", coding)


def test_truncated_gzip_raises() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        decode_body(gzip.compress(TEXT)[:-10], "gzip")


def test_percent_decoding() -> None:
    assert percent_decode("a%2Fb+c%zz") == b"a/b+c%zz"
    assert percent_decode_repeated("%2541%252F") == b"A/"


def test_policy_blocks_a_bomb_and_a_corrupt_body() -> None:
    engine = policy(max_request_body="1MiB")
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    decision = engine.check_request(
        request(body=bomb, headers={"content-encoding": "gzip"}, content_type="application/json")
    )
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "decoding"
    corrupt = engine.check_request(request(body=b"garbage", headers={"content-encoding": "br"}))
    assert corrupt.verdict is Verdict.BLOCK
    assert "cannot be inspected" in corrupt.reason


def test_truncated_zstd_raises() -> None:
    frame = zstandard.ZstdCompressor().compress(TEXT * 100)
    with pytest.raises(DecodeError, match="truncated"):
        decode_body(frame[: len(frame) // 2], "zstd")
    assert decode_body(frame + frame, "zstd") == TEXT * 200
