"""Stream large and open-ended responses instead of buffering them, still scrubbed.

Server-sent events (LLM APIs stream their answers this way) must reach the agent
as they arrive, and a multi-gigabyte download must not sit in the proxy's memory.
Such responses are streamed through `StreamScrub`, which replaces real secret
values chunk by chunk and holds back only the few trailing bytes that could be
the start of a value split across two chunks.

Responses from hosts a secret is injected into get what `policy/scrubbing/echoes.py`
promises for whole bodies, without giving up streaming for event streams:

- Pieces of values are masked chunk by chunk: the mask is part of the scrub
  `StreamScrub` runs, and its carry logic (hold back the trailing run of value
  bytes, move the cut left while scrubbing in two parts differs from scrubbing
  whole) covers a 6-byte piece cut in two just as it covers a whole value.
- Packed bodies cannot be scrubbed in pieces, so `SniffedStream` looks at the
  first bytes: a body that starts with a compression or archive signature is
  buffered (up to `UNPACK_LIMIT`), unpacked, scrubbed and repacked whole; any
  other body streams as usual. Buffering only such bodies keeps event streams
  and ordinary downloads streaming, and costs nothing but a prefix comparison.
  The status line has already gone out when a packed body turns out too large
  or undecodable, so the proxy cannot answer 502 then: it drops the body, kills
  the flow (the agent sees the connection end mid-response) and audits a block.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Iterable
from typing import Literal

from mitmproxy import http

from agentcage.policy.decoding import DecodeError
from agentcage.policy.scrubbing.echoes import UNPACK_LIMIT, EchoGuard
from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.flows import folded
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
STREAM_ABOVE = 4 * 1024 * 1024
MAX_CARRY_WINDOWS = 16
# Bytes that can occur in a secret value as the scrubber looks for it: raw, URL-,
# base64- or JSON-encoded.
_ENCODED_ALPHABET = frozenset((string.ascii_letters + string.digits + "+/=-_%\\.~").encode())


class StreamScrub:
    """A mitmproxy stream callable: scrub each chunk, carry a possible partial value.

    Every form of every value consists of `alphabet` bytes and is at most `window`
    long. So a value cut off by the chunk's end lies in the trailing run of alphabet
    bytes; that run (at most `window` bytes) is held back, unscrubbed, for the next
    chunk. The cut is moved left while a value straddles it, so scrubbing in pieces
    gives what scrubbing the whole body would.
    """

    def __init__(
        self,
        scrub: Callable[[bytes], bytes],
        alphabet: frozenset[int],
        window: int,
        on_bytes: Callable[[int], None],
    ) -> None:
        self._scrub = scrub
        self._alphabet = alphabet
        self._window = window
        self._carry = b""
        self._on_bytes = on_bytes

    def __call__(self, chunk: bytes) -> list[bytes]:
        if not chunk:  # end of the body
            out, self._carry = self._scrub(self._carry), b""
        else:
            data = self._carry + chunk
            cut = self._cut(data)
            if cut is None:
                # Fallback, still safe: scrub everything, hold back the scrubbed tail.
                data = self._scrub(data)
                cut = len(data) - self._tail(data)
                out, self._carry = data[:cut], data[cut:]
            else:
                out, self._carry = self._scrub(data[:cut]), data[cut:]
        self._on_bytes(len(out))
        # Never an empty chunk: on a chunked HTTP/1.1 response mitmproxy would write
        # it as the zero-length chunk that ends the body.
        return [out] if out else []

    def _cut(self, data: bytes) -> int | None:
        window, scrub = self._window, self._scrub
        cut = len(data) - self._tail(data)
        while cut > 0 and len(data) - cut <= MAX_CARRY_WINDOWS * window:
            low = max(0, cut - window)
            if scrub(data[low:]) == scrub(data[low:cut]) + scrub(data[cut:]):
                return cut
            cut = low  # a value straddles the cut
        # Only a body packed with values gets here (or one that is all carry).
        return cut if cut <= 0 else None

    def _tail(self, data: bytes) -> int:
        limit = min(self._window, len(data))
        keep = 0
        while keep < limit and data[len(data) - 1 - keep] in self._alphabet:
            keep += 1
        return keep


class SniffedStream:
    """A stream callable for hosts secrets go to: packed bodies are handled whole.

    `plain` (a `StreamScrub`) takes every body that does not start packed.
    """

    def __init__(
        self,
        guard: EchoGuard,
        plain: Callable[[bytes], list[bytes]],
        on_bytes: Callable[[int], None],
        on_fail: Callable[[str], None],
        limit: int = UNPACK_LIMIT,
    ) -> None:
        self._guard = guard
        self._plain = plain
        self._on_bytes = on_bytes
        self._on_fail = on_fail
        self._limit = limit
        self._mode: Literal["sniff", "plain", "packed", "failed"] = "sniff"
        self._held = bytearray()

    def __call__(self, chunk: bytes) -> list[bytes]:
        end = not chunk
        data = chunk
        if self._mode == "sniff":
            self._held += chunk
            if not end and self._guard.undecided(bytes(self._held)):
                return []
            data = bytes(self._held)
            self._held = bytearray()
            self._mode = "packed" if self._guard.packed(data) else "plain"
        if self._mode == "plain":
            out = self._plain(data) if data else []
            return out + self._plain(b"") if end else out
        if self._mode == "packed":
            self._held += data
            if len(self._held) > self._limit:
                self._fail(f"a packed body larger than {self._limit} bytes cannot be checked")
            elif end:
                return self._whole()
        return []

    def _whole(self) -> list[bytes]:
        try:
            clean = self._guard.scrub(bytes(self._held))
        except DecodeError as exc:
            self._fail(str(exc))
            return []
        self._held = bytearray()
        self._on_bytes(len(clean))
        return [clean] if clean else []

    def _fail(self, reason: str) -> None:
        self._mode = "failed"
        self._held = bytearray()
        self._on_fail(reason)


def scrub_window(values: Iterable[str]) -> tuple[frozenset[int], int]:
    """(alphabet, window) covering every encoded form of `values`."""
    encoded = [value.encode() for value in values]
    alphabet = _ENCODED_ALPHABET | frozenset(b for value in encoded for b in value)
    longest = max((len(value) for value in encoded), default=0)
    return alphabet, 6 * longest + 8


def would_stream(resp: http.Response) -> bool:
    """Whether `ResponseStreaming` streams a response with these headers."""
    values = folded(resp.headers, _FRAMING)
    if values.get(b"content-encoding", "identity").strip().lower() not in ("", "identity"):
        return False  # compressed: scrubbed whole, after decoding
    if values.get(b"content-type", "").lower().startswith("text/event-stream"):
        return True
    length = values.get(b"content-length")
    if length is None:
        return True
    return length.isdigit() and int(length) > STREAM_ABOVE


_FRAMING = frozenset({b"content-encoding", b"content-type", b"content-length"})


class ResponseStreaming:
    """Decides at `responseheaders` whether a response is streamed."""

    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or flow.error or not would_stream(resp):
            return
        try:
            self._stream(flow, resp)
        except Exception:
            # Not streaming is safe: the buffered path scrubs the whole body.
            logger.exception("could not stream the response of %s; buffering it", flow.id)
            resp.stream = False

    def _stream(self, flow: http.HTTPFlow, resp: http.Response) -> None:
        runtime = self._holder.current
        state = flow_state(flow)
        state.streamed_bytes = 0

        def count(size: int) -> None:
            state.streamed_bytes = (state.streamed_bytes or 0) + size

        def fail(reason: str) -> None:
            reason = f"the response could not be checked for secrets: {reason}"
            logger.warning("dropping the streamed response of %s: %s", flow.id, reason)
            state.response_block = ("scrub", reason)
            if flow.killable:
                flow.kill()  # type: ignore[no-untyped-call]

        guard = runtime.policy.echo_guard(flow.request.host, partial=resp.status_code == 206)
        alphabet, window = scrub_window(runtime.secret_values)
        plain = StreamScrub(guard.scrub_part, alphabet, window, count)
        resp.stream = SniffedStream(guard, plain, count, fail) if guard.injected else plain
        if runtime.secret_values and "content-length" in resp.headers:
            # A placeholder is not as long as its value: the length may change.
            del resp.headers["content-length"]
            if flow.request.http_version == "HTTP/1.1":
                resp.headers["transfer-encoding"] = "chunked"
