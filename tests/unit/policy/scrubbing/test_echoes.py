"""Responses from hosts secrets go to: packed bodies unpacked, pieces of values masked."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
import zlib

import pytest
import zstandard

from agentcage.policy.decoding import DecodeError
from agentcage.policy.engine import Policy
from tests.unit.policy.helpers import policy

VALUE = "sk-test-REALvalue0123456789abcdefXYZ"
PLACEHOLDER = b"{{API_KEY}}"
PACKERS = {
    "gzip": (gzip.compress, gzip.decompress),
    "zlib": (zlib.compress, zlib.decompress),
    "zstd": (zstandard.ZstdCompressor().compress, zstandard.ZstdDecompressor().decompress),
    "bzip2": (bz2.compress, bz2.decompress),
    "xz": (lzma.compress, lzma.decompress),
}


def _engine(*places: str) -> Policy:
    rule = {"env": "API_KEY", "inject_to": ["api.example.com"], "places": list(places)}
    return policy({"API_KEY": VALUE}, secret_injection=[rule])


def _pieces(data: bytes) -> list[bytes]:
    raw = VALUE.encode()
    return [raw[i : i + 6] for i in range(len(raw) - 5) if raw[i : i + 6] in data]


@pytest.mark.parametrize("packing", sorted(PACKERS))
def test_a_packed_echo_is_unpacked_scrubbed_and_repacked(packing: str) -> None:
    pack, unpack = PACKERS[packing]
    guard = _engine("headers").echo_guard("api.example.com")
    body = pack(b"stored: " + VALUE.encode() + b" end")
    out = guard.scrub(body)
    assert unpack(out) == b"stored: " + PLACEHOLDER + b" end"
    clean = pack(b"nothing to see")
    assert guard.scrub(clean) == clean


def test_a_zip_archive_is_scrubbed_member_by_member_even_nested() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("README", b"hello")
        out.writestr("secret.txt.gz", gzip.compress(VALUE.encode()))
    guard = _engine("headers").echo_guard("api.example.com")
    with zipfile.ZipFile(io.BytesIO(guard.scrub(archive.getvalue()))) as result:
        assert result.namelist() == ["README", "secret.txt.gz"]
        assert result.read("README") == b"hello"
        assert gzip.decompress(result.read("secret.txt.gz")) == PLACEHOLDER


def test_hosts_no_secret_goes_to_are_not_sniffed() -> None:
    guard = _engine("headers").echo_guard("other.example.org")
    assert not guard.injected
    body = gzip.compress(VALUE.encode())
    assert guard.scrub(body) == body  # the value scrub still runs, on the bytes as they are
    assert guard.scrub(VALUE.encode()) == PLACEHOLDER
    assert guard.scrub(b"\x1f\x8b broken") == b"\x1f\x8b broken"


def test_a_packed_body_that_does_not_unpack_is_refused() -> None:
    guard = _engine("headers").echo_guard("api.example.com")
    whole = gzip.compress(VALUE.encode() * 50)
    for broken in (whole[:10], whole[: len(whole) // 2], b"\x1f\x8b" + b"\x00" * 30):
        with pytest.raises(DecodeError):
            guard.scrub(broken)


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    guard = _engine("headers").echo_guard("api.example.com")
    body = VALUE.encode()
    for _ in range(3):
        body = gzip.compress(body)
    assert gzip.decompress(gzip.decompress(gzip.decompress(guard.scrub(body)))) == PLACEHOLDER
    with pytest.raises(DecodeError, match="layers"):
        guard.scrub(gzip.compress(body))


def test_pieces_are_masked_in_partial_responses_from_any_injection_host() -> None:
    engine = _engine("headers")
    piece = b"0-9: " + VALUE.encode()[10:20]
    assert engine.echo_guard("api.example.com").scrub(piece) == piece  # whole reads: values only
    partial = engine.echo_guard("api.example.com", partial=True)
    assert partial.scrub(piece) == b"0-9: " + b"*" * 10
    assert engine.echo_guard("other.example.org", partial=True).scrub(piece) == piece


@pytest.mark.parametrize("place", ["query", "body", "websocket"])
def test_pieces_are_masked_in_every_response_from_hosts_that_may_store_a_value(
    place: str,
) -> None:
    guard = _engine("headers", place).echo_guard("api.example.com")
    for size in (6, 10, 17):
        for start in range(0, len(VALUE) - size + 1, 3):
            out = guard.scrub(b'{"data": "' + VALUE.encode()[start : start + size] + b'"}')
            assert not _pieces(out), (start, size)
    text = guard.scrub_text("attachment; filename=" + VALUE[2:12])
    assert text == "attachment; filename=" + "*" * 10


def test_a_partial_response_with_a_content_encoding_cannot_be_checked() -> None:
    engine = _engine("headers")
    partial = engine.echo_guard("api.example.com", partial=True)
    assert partial.refusal("gzip") is not None
    assert partial.refusal("identity") is None
    assert engine.echo_guard("api.example.com").refusal("gzip") is None
    assert engine.echo_guard("other.example.org", partial=True).refusal("gzip") is None


def test_guards_are_built_once_per_set_of_rules() -> None:
    engine = _engine("body")
    assert engine.echo_guard("api.example.com") is engine.echo_guard("v2.api.example.com")
    assert engine.echo_guard("x.org") is engine.echo_guard("y.org")
