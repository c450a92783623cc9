"""A recording upstream server on loopback: HTTPS (HTTP/1.1 + HTTP/2), HTTP and WebSocket.

Routes (any method):
  /reflect...       answers with the request body (injection/scrub round trips)
  /bytes/N          answers N bytes of `x`
  /gzip-reflect...  answers the request body gzip-encoded
  /sse-reflect...   answers the request body as text/event-stream, in two chunks
                    split mid-body, with a pause between them
  /chunked-reflect  answers the request body with no Content-Length (chunked)
  /json-echo        answers JSON {"data": "<base64 of the raw request body>"}
  /store/KEY        a store that hands back what it was given, as a careless API does:
                    PUT/POST keep the raw body, its Content-Type and Content-Encoding
                    (with `?header=NAME`: that request header's value instead);
                    GET serves them back raw, honouring `Range: bytes=A-B` (206 and
                    Content-Range). GET options: `?pack=gzip|zlib|zstd|bzip2|xz|zip`
                    packs the stored bytes first (served without Content-Encoding),
                    `?slice=bytes=A-B` serves only those bytes with a 200, `?chunked=1`
                    sends the answer without Content-Length, in two chunks.
  anything else     answers JSON {"ok": true, "path": ...}
WebSocket: any path; every message is echoed back unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import bz2
import contextlib
import gzip
import io
import json
import lzma
import re
import socket
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trustme
import zstandard
from hypercorn.asyncio import serve
from hypercorn.config import Config

Scope = dict[str, Any]
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Stored:
    """What `/store/KEY` keeps: the raw bytes and how they were labelled."""

    body: bytes
    content_type: str
    content_encoding: str


def _zip(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("stored.txt", data)
    return out.getvalue()


PACKERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "zlib": zlib.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "bzip2": bz2.compress,
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ),
    "zip": _zip,
}


@dataclass
class Received:
    """One request as the upstream saw it."""

    method: str
    path: str
    host: str
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str
    scheme: str
    ws_messages: list[str | bytes] = field(default_factory=list)
    # (address, port) the request came from: one per TCP connection to the upstream.
    peer: tuple[str, int] = ("", 0)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)


class Recorder:
    """The ASGI app: records what arrives, answers per the routes above."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.stored: dict[str, Stored] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.stored.clear()

    def _record(self, scope: Scope, body: bytes) -> Received:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        host = next((v for k, v in headers if k == "host"), "")
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        path = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        item = Received(
            method=scope.get("method", "GET"),
            path=path,
            host=host,
            headers=headers,
            body=body,
            http_version=scope.get("http_version", ""),
            scheme=scope.get("scheme", ""),
            peer=tuple(scope.get("client") or ("", 0)),  # type: ignore[arg-type]
        )
        with self._lock:
            self.received.append(item)
        return item

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        item = self._record(scope, b"".join(chunks))
        if item.path.startswith("/store/"):
            await self._store(item, scope, send)
            return
        if item.path.startswith("/sse-reflect"):
            await self._sse(item.body, send)
            return
        if item.path.startswith("/chunked-reflect"):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": item.body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        headers = [(b"content-type", b"application/octet-stream")]
        if item.path.startswith("/reflect"):
            body = item.body
        elif item.path.startswith("/gzip-reflect"):
            body = gzip.compress(item.body)
            headers.append((b"content-encoding", b"gzip"))
        elif item.path.startswith("/json-echo"):
            body = json.dumps({"data": base64.b64encode(item.body).decode()}).encode()
            headers = [(b"content-type", b"application/json")]
        elif item.path.startswith("/bytes/"):
            body = b"x" * int(item.path.split("/")[2].split("?")[0])
        else:
            body = json.dumps({"ok": True, "path": item.path}).encode()
            headers = [(b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _store(self, item: Received, scope: Scope, send: Any) -> None:
        key = scope["path"].removeprefix("/store/")
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        if item.method in ("PUT", "POST"):
            if "header" in query:
                value = item.header(query["header"]) or ""
                stored = Stored(value.encode("latin-1"), "text/plain", "")
            else:
                kind = item.header("content-type") or "application/octet-stream"
                stored = Stored(item.body, kind, item.header("content-encoding") or "")
            with self._lock:
                self.stored[key] = stored
            await _answer(send, 201, [(b"content-type", b"application/json")], b'{"stored": true}')
            return
        found = self.stored.get(key)
        if found is None:
            await _answer(send, 404, [], b"")
            return
        body, headers = found.body, [(b"content-type", found.content_type.encode())]
        if "pack" in query:
            packed = PACKERS[query["pack"]](body)
            body, headers = packed, [(b"content-type", b"application/octet-stream")]
        elif found.content_encoding:
            headers.append((b"content-encoding", found.content_encoding.encode()))
        status = 200
        wanted = _RANGE.fullmatch(item.header("range") or query.get("slice", ""))
        if wanted:
            first = int(wanted.group(1))
            last = min(int(wanted.group(2) or len(body) - 1), len(body) - 1)
            if "slice" not in query:
                status = 206
                headers.append((b"content-range", f"bytes {first}-{last}/{len(body)}".encode()))
            body = body[first : last + 1]
        if "chunked" in query:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            half = len(body) // 2
            await send({"type": "http.response.body", "body": body[:half], "more_body": True})
            await send({"type": "http.response.body", "body": body[half:], "more_body": False})
            return
        await _answer(send, status, headers, body)

    async def _sse(self, body: bytes, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        half = len(body) // 2
        await send({"type": "http.response.body", "body": body[:half], "more_body": True})
        await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": body[half:], "more_body": False})

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        item = self._record(scope, b"")
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif message["type"] == "websocket.receive":
                text, data = message.get("text"), message.get("bytes")
                payload: str | bytes = text if text is not None else (data or b"")
                item.ws_messages.append(payload)
                if text is not None:
                    await send({"type": "websocket.send", "text": text})
                else:
                    await send({"type": "websocket.send", "bytes": data})
            else:
                return


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _listening_socket(address: str = "127.0.0.1", port: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::" takes IPv4 too
    sock.bind((address, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Upstream:
    """Serves `Recorder` over TLS on `tls_port` and in clear text on `plain_port`.

    The certificate covers `names` (and 127.0.0.1); `ca_pem` is the CA file a
    client (or the proxy's `--upstream-ca`) must trust. By default both listen on
    free ports of 127.0.0.1; `address` "::" listens on every local address, IPv4
    and IPv6 (inside a network namespace the caller made, where that is safe).
    """

    def __init__(
        self,
        ca: trustme.CA,
        names: list[str],
        *,
        address: str = "127.0.0.1",
        ports: tuple[int, int] = (0, 0),
    ) -> None:
        self.app = Recorder()
        self._dir = tempfile.TemporaryDirectory(prefix="agentcage-upstream-")
        cert = ca.issue_cert(*names, "127.0.0.1")
        certfile, keyfile = Path(self._dir.name, "cert.pem"), Path(self._dir.name, "key.pem")
        for blob in cert.cert_chain_pems:
            with certfile.open("ab") as handle:
                handle.write(blob.bytes())
        cert.private_key_pem.write_to_path(str(keyfile))
        self.ca_pem = Path(self._dir.name, "ca.pem")
        ca.cert_pem.write_to_path(str(self.ca_pem))
        self._tls = _listening_socket(address, ports[0])
        self._plain = _listening_socket(address, ports[1])
        self._config = Config()
        self._config.bind = [f"fd://{self._tls.fileno()}"]
        self._config.insecure_bind = [f"fd://{self._plain.fileno()}"]
        self._config.certfile, self._config.keyfile = str(certfile), str(keyfile)
        self._config.loglevel = "WARNING"
        self._config.accesslog = None
        self._config.errorlog = None
        self._config.keep_alive_timeout = 30
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstream", daemon=True)

    @property
    def tls_port(self) -> int:
        return int(self._tls.getsockname()[1])

    @property
    def plain_port(self) -> int:
        return int(self._plain.getsockname()[1])

    @property
    def received(self) -> list[Received]:
        return self.app.received

    @property
    def stored(self) -> dict[str, Stored]:
        return self.app.stored

    def clear(self) -> None:
        self.app.clear()

    def start(self) -> Upstream:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("upstream server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stopping:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)
        for sock in (self._tls, self._plain):
            with contextlib.suppress(OSError):  # hypercorn owns and closes the fds
                sock.close()
        self._dir.cleanup()

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            self._ready.set()
            await serve(self.app, self._config, shutdown_trigger=self._stopping.wait)  # type: ignore[arg-type]

        asyncio.run(main())
