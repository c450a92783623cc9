"""StreamScrub: chunked scrubbing equals scrubbing the whole body, wherever it is cut."""

from __future__ import annotations

import base64
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.scrub import Scrubber
from agentcage.proxy.streaming import StreamScrub, scrub_window

SECRET = "sk-ant-api03-REAL/secret+VALUE=0123"
scrubber = Scrubber([(SECRET, "{{KEY}}")])
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
    stream = StreamScrub(Scrubber([]).scrub, alphabet, window, lambda n: None)
    assert stream(b"abc") + stream(b"def") + stream(b"") == [b"abcdef"]
