"""The kept connection's reader reads as asyncio's StreamReader reads, byte for byte."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.proxy.pooled_responses import ResponseReader

LIMIT = 64
Op = tuple[str, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("readline"), st.just(0)),
        st.tuples(st.just("readuntil"), st.just(0)),
        st.tuples(st.just("readexactly"), st.integers(0, 3 * LIMIT)),
    ),
    max_size=8,
)
# Mostly short lines, some over the limit, some data cut without a line end.
data = st.lists(
    st.one_of(
        st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"") + b"\n"),
        st.binary(min_size=LIMIT, max_size=2 * LIMIT),
        # lines about as long as the limit: where the stream's rule decides
        st.integers(LIMIT - 3, LIMIT + 3).map(lambda n: b"y" * n + b"\n"),
        st.binary(max_size=10),
    ),
    max_size=8,
).map(b"".join)


async def _outcomes(reader: Any, steps: list[Op]) -> list[object]:
    seen: list[object] = []
    for name, size in steps:
        call = reader.readexactly(size) if name == "readexactly" else getattr(reader, name)()
        try:
            seen.append(await call)
        except asyncio.IncompleteReadError as exc:
            seen.append(("incomplete", exc.partial, exc.expected))
        except asyncio.LimitOverrunError:
            seen.append("overrun")
            break  # where the stream leaves its buffer after an overrun is its own
        except ValueError:
            seen.append("too long")
            break
        seen.append(reader.at_eof())
    return seen


@settings(max_examples=400, deadline=None)
@given(raw=data, steps=ops, cut=st.integers(0, 200))
def test_reads_match_the_stream_reader(raw: bytes, steps: list[Op], cut: int) -> None:
    async def both() -> tuple[list[object], list[object]]:
        stream = asyncio.StreamReader(limit=LIMIT)
        ours = ResponseReader(LIMIT)
        # The bytes arrive in two pieces, the second while the reads may be waiting.
        first, second = raw[:cut], raw[cut:]
        results = []
        for reader, feed in (
            (stream, lambda b, eof: (stream.feed_data(b), eof and stream.feed_eof())),
            (ours, lambda b, eof: ours.feed(b, eof=eof)),
        ):
            feed(first, False)
            loop = asyncio.get_running_loop()
            loop.call_later(0.001, feed, second, True)
            results.append(await asyncio.wait_for(_outcomes(reader, steps), 5))
        return results[0], results[1]

    expected, got = asyncio.run(both())
    assert got == expected


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def test_the_socket_stops_while_nobody_reads_and_goes_on_for_a_reader() -> None:
    async def go() -> bytes:
        reader = ResponseReader(LIMIT)
        transport = Transport()
        reader.connection_made(transport)
        reader.data_received(b"x" * (2 * LIMIT + 1))
        assert transport.paused
        body = await reader.readexactly(2 * LIMIT + 1)
        assert not reader.buffer
        waiting = asyncio.ensure_future(reader.readexactly(3))
        await asyncio.sleep(0)
        assert not transport.paused
        reader.data_received(b"abc")
        return body + await waiting

    assert asyncio.run(go()) == b"x" * (2 * LIMIT + 1) + b"abc"


def test_a_lost_connection_ends_a_waiting_read() -> None:
    async def go() -> object:
        reader = ResponseReader(LIMIT)
        waiting = asyncio.ensure_future(reader.readexactly(4))
        await asyncio.sleep(0)
        reader.data_received(b"ab")
        reader.connection_lost(ConnectionResetError())
        try:
            return await waiting
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    assert asyncio.run(go()) == b"ab"
