"""StreamScrub: chunked scrubbing equals scrubbing the whole body, wherever it is cut."""

from __future__ import annotations

import base64
import gzip
import itertools
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.engine import Policy
from agentcage.policy.scrubbing.echoes import EchoGuard
from agentcage.policy.scrubbing.forms import FormScrubber
from agentcage.proxy.streaming import SniffedStream, StreamScrub, scrub_window
from tests.unit.policy.helpers import config

SECRET = "sk-ant-api03-REAL/secret+VALUE=0123"
scrubber = FormScrubber([(SECRET, "{{KEY}}")])
FORMS = [SECRET.encode(), base64.b64encode(SECRET.encode()), b"sk-ant-api03-REAL%2Fsecret"]


def _run(body: bytes, cuts: list[int]) -> bytes:
    alphabet, window = scrub_window([SECRET])
    seen: list[int] = []
    stream = StreamScrub(scrubber.scrub, alphabet, window, seen.append)
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    pieces = [stream(body[a:b]) for a, b in itertools.pairwise(points)] + [stream(b"")]
    assert all(piece for chunks in pieces for piece in chunks), "an empty chunk ends the body"
    out = b"".join(piece for chunks in pieces for piece in chunks)
    assert sum(seen) == len(out)
    return out


@given(
    st.lists(st.sampled_from([*FORMS, b" ", b"\n\n", b"data: ", b"xyz", b"{}"]), max_size=30),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_cut_gives_the_same_result_as_whole(parts: list[bytes], cuts: list[int]) -> None:
    body = b"".join(parts)
    assert _run(body, cuts) == scrubber.scrub(body)
    assert SECRET.encode() not in _run(body, cuts)


@settings(deadline=None, max_examples=50)
@given(st.integers(min_value=7, max_value=400), st.integers(min_value=0, max_value=5000))
def test_a_body_packed_with_values_never_leaks_one(step: int, offset: int) -> None:
    body = SECRET.encode() * 200
    cuts = list(range(offset % step, len(body), step))
    out = _run(body, cuts)
    assert SECRET.encode() not in out
    assert b"sk-ant-api03" not in out


def test_text_ending_in_a_delimiter_is_not_held_back() -> None:
    alphabet, window = scrub_window([SECRET])
    stream = StreamScrub(scrubber.scrub, alphabet, window, lambda n: None)
    assert stream(b"data: hello\n\n") == [b"data: hello\n\n"]


def test_a_body_that_is_all_value_is_held_back_not_ended() -> None:
    alphabet, window = scrub_window([SECRET])
    stream = StreamScrub(scrubber.scrub, alphabet, window, lambda n: None)
    assert stream(SECRET.encode()) == []  # held back whole, and no empty chunk
    assert stream(b"") == [b"{{KEY}}"]


def test_without_secrets_nothing_changes() -> None:
    alphabet, window = scrub_window([])
    stream = StreamScrub(FormScrubber([]).scrub, alphabet, window, lambda n: None)
    assert stream(b"abc") + stream(b"def") + stream(b"") == [b"abcdef"]


def _guard(*places: str, partial: bool = False) -> EchoGuard:
    rule = {"env": "KEY", "inject_to": ["api.example.com"], "places": list(places)}
    engine = Policy.from_config(config(secret_injection=[rule]), {"KEY": SECRET}, environ={})
    return engine.echo_guard("api.example.com", partial=partial)


def _pieces(data: bytes) -> list[bytes]:
    raw = SECRET.encode()
    return [raw[i : i + 6] for i in range(len(raw) - 5) if raw[i : i + 6] in data]


def _sniffed(guard: EchoGuard, body: bytes, cuts: list[int], limit: int = 1 << 20) -> Outcome:
    alphabet, window = scrub_window([SECRET])
    seen: list[int] = []
    failures: list[str] = []
    plain = StreamScrub(guard.scrub_part, alphabet, window, seen.append)
    stream = SniffedStream(guard, plain, seen.append, failures.append, limit)
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    pieces = [stream(body[a:b]) for a, b in itertools.pairwise(points)] + [stream(b"")]
    assert all(piece for chunks in pieces for piece in chunks), "an empty chunk ends the body"
    out = b"".join(piece for chunks in pieces for piece in chunks)
    assert sum(seen) == len(out)
    return Outcome(out, failures)


@dataclass
class Outcome:
    body: bytes
    failures: list[str]


@settings(deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"data: ", b"\n\n", b"xyz", SECRET.encode()[3:13], SECRET.encode()[20:26]]
        ),
        max_size=20,
    ),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_pieces_are_masked_wherever_the_stream_is_cut(parts: list[bytes], cuts: list[int]) -> None:
    guard = _guard("body")
    body = b"".join(parts)
    out = _sniffed(guard, body, cuts)
    assert out.body == guard.scrub(body)
    assert not _pieces(out.body)
    assert not out.failures


@settings(deadline=None, max_examples=30)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_a_packed_stream_is_held_and_scrubbed_whole(cuts: list[int]) -> None:
    guard = _guard("headers")
    body = gzip.compress(b"event: " + SECRET.encode() * 3)
    out = _sniffed(guard, body, cuts)
    assert gzip.decompress(out.body) == b"event: " + b"{{KEY}}" * 3
    assert not out.failures


def test_a_packed_stream_that_does_not_unpack_or_is_too_large_fails_closed() -> None:
    guard = _guard("headers")
    broken = gzip.compress(SECRET.encode() * 100)[:-20]
    out = _sniffed(guard, broken, [3, 50])
    assert out.body == b""
    assert out.failures and "truncated" in out.failures[0]
    large = gzip.compress(random.Random(1).randbytes(4000))
    out = _sniffed(guard, large, [100, 200], limit=1000)
    assert out.body == b""
    assert out.failures and "larger than 1000" in out.failures[0]


def test_a_stream_waits_for_enough_bytes_to_tell_only_when_it_must() -> None:
    guard = _guard("headers")
    alphabet, window = scrub_window([SECRET])
    plain = StreamScrub(guard.scrub_part, alphabet, window, lambda n: None)
    stream = SniffedStream(guard, plain, lambda n: None, lambda reason: None)
    assert stream(b":\n\n") == [b":\n\n"]  # cannot start a signature: sent at once
    waiting = SniffedStream(guard, plain, lambda n: None, lambda reason: None)
    assert waiting(b"BZ") == []
    assert waiting(b"h is not bzip2") == [b"BZh is not "]  # the trailing word: carry
    assert waiting(b"") == [b"bzip2"]
    short = SniffedStream(guard, plain, lambda n: None, lambda reason: None)
    assert short(b"\x1f") == []
    assert short(b"") == [b"\x1f"]
