"""Header values read in one pass are the values `Headers.get` gives, one by one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from mitmproxy import http

from agentcage.proxy.flows import folded
from agentcage.proxy.streaming import STREAM_ABOVE, would_stream

NAMES = [b"content-encoding", b"Content-Type", b"CONTENT-LENGTH", b"content-type", b"x-other"]
VALUES = st.sampled_from(
    [b"", b" gzip ", b"identity", b"IDENTITY", b"text/event-stream; charset=utf-8", b"12",
     str(STREAM_ABOVE + 1).encode(), b"\xff\xfe", b"caf\xc3\xa9", b"1, 2"]
) | st.binary(max_size=8)  # fmt: skip
FIELDS = st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=6)


@given(FIELDS)
def test_each_value_is_what_headers_get_gives(fields: list[tuple[bytes, bytes]]) -> None:
    headers = http.Headers(fields)
    wanted = frozenset({b"content-encoding", b"content-type", b"content-length", b"absent"})
    values = folded(headers, wanted)
    for name in wanted:
        assert values.get(name) == headers.get(name.decode())


def _would_stream_by_get(resp: http.Response) -> bool:
    """The decision as it read before: one `Headers.get` per header."""
    encoding = resp.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return False
    if resp.headers.get("content-type", "").lower().startswith("text/event-stream"):
        return True
    length = resp.headers.get("content-length")
    if length is None:
        return True
    return length.isdigit() and int(length) > STREAM_ABOVE


@given(FIELDS)
def test_the_streaming_decision_is_unchanged(fields: list[tuple[bytes, bytes]]) -> None:
    resp = http.Response.make(200)
    resp.headers = http.Headers(fields)
    assert would_stream(resp) == _would_stream_by_get(resp)
