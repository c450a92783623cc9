"""Reading one response off a kept upstream connection, with as little in between as asyncio allows.

`ResponseReader` is the connection's protocol: received bytes go into one buffer, and a
reader waiting for more is woken, nothing else. It reads as `asyncio.StreamReader`
does (`readline`, `readuntil`, `readexactly`, `at_eof`, the same errors, the same limit
on a line and pausing the transport while the buffer is over twice that), without the
stream's machinery in between; on the pool's path (a GET on a new agent connection each
time) that and the task `asyncio.wait_for` made were about a tenth of the exchange's
0.5 ms in the running proxy. `read_response` reads a response as mitmproxy's HTTP/1
client would, or raises `NotReusable` for one the pool must leave to mitmproxy.
"""

from __future__ import annotations

import asyncio
import time

from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.net.http.validate import validate_headers

from agentcage.proxy.streaming import would_stream

MAX_HEAD_BYTES = 64 * 1024


class NotReusable(Exception):
    """This exchange cannot finish on the pool; mitmproxy's own path takes the request."""


class ResponseReader(asyncio.Protocol):
    """A kept upstream connection's received bytes, read as `StreamReader` reads them."""

    def __init__(self, limit: int = MAX_HEAD_BYTES) -> None:
        self._limit = limit
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()
        over = len(self.buffer) > 2 * self._limit
        if over and self._waiter is None and not self._paused and self.transport is not None:
            # Nobody reads now: stop the socket until someone does (StreamReader's rule).
            self.transport.pause_reading()
            self._paused = True

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()

    def feed(self, data: bytes, eof: bool = False) -> None:
        """Bytes as if received (and the end), for a reader with no transport."""
        self.data_received(data)
        if eof:
            self.eof_received()

    def at_eof(self) -> bool:
        return self._eof and not self.buffer

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        searched = 0
        while True:
            found = self.buffer.find(separator, searched)
            if found >= 0:
                if found > self._limit:
                    raise asyncio.LimitOverrunError("separator found past the limit", found)
                return self._take(found + len(separator))
            if len(self.buffer) + 1 - len(separator) > self._limit:
                raise asyncio.LimitOverrunError("separator not found within the limit", 0)
            if self._eof:
                raise asyncio.IncompleteReadError(self._take(len(self.buffer)), None)
            searched = max(0, len(self.buffer) - len(separator) + 1)
            await self._more()

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            raise ValueError(exc.args[0]) from None

    async def readexactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if self._eof:
                raise asyncio.IncompleteReadError(self._take(len(self.buffer)), n)
            await self._more()
        return self._take(n)

    def _take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def _more(self) -> None:
        if self._waiter is not None:
            raise RuntimeError("two readers wait on one kept connection")
        if self._paused:
            assert self.transport is not None
            self.transport.resume_reading()
            self._paused = False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


async def read_response(
    reader: ResponseReader, req: http.Request, limit: int | None
) -> http.Response:
    """One whole response read as mitmproxy's HTTP/1 client reads it; NotReusable if it
    is one that mitmproxy would stream, or has no length to end it by."""
    lines = await _read_head(reader)
    started = time.time()
    try:
        response = http1.read_response_head(lines)
        validate_headers(response)
        size = http1.expected_http_body_size(req, response)
    except ValueError as exc:
        raise NotReusable(f"cannot parse the response: {exc}") from exc
    if response.status_code < 200:
        raise NotReusable("an informational response")
    response.timestamp_start = started
    if size == 0:
        body = b""
    elif would_stream(response):
        raise NotReusable("a response mitmproxy streams")
    elif size is None:
        body = await _read_chunked(reader, limit)
    elif size < 0:
        raise NotReusable("a response that ends when the connection does")
    elif limit is not None and size > limit:
        raise NotReusable("a response over body_size_limit")
    else:
        body = await reader.readexactly(size)
    response.data.content = body
    response.timestamp_end = time.time()
    return response


async def _read_head(reader: ResponseReader) -> list[bytes]:
    """The head's lines without their line ends, as mitmproxy splits them (LF or CRLF)."""
    lines: list[bytes] = []
    total = 0
    while True:
        try:
            line = await reader.readline()
        except ValueError as exc:  # a line longer than the reader's limit
            raise NotReusable("response head too large") from exc
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        total += len(line)
        if total > MAX_HEAD_BYTES:
            raise NotReusable("response head too large")
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if not line:
            if not lines:
                raise NotReusable("a blank line before the status line")
            return lines
        lines.append(line)


async def _read_chunked(reader: ResponseReader, limit: int | None) -> bytes:
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise NotReusable("a malformed chunk") from exc
        if size == 0:
            if await reader.readuntil(b"\n") not in (b"\r\n", b"\n"):
                raise NotReusable("a response with trailers")
            return bytes(body)
        body += await reader.readexactly(size)
        if limit is not None and len(body) > limit:
            raise NotReusable("a response over body_size_limit")
        if await reader.readuntil(b"\n") not in (b"\r\n", b"\n"):
            raise NotReusable("a malformed chunk")
