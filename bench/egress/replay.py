"""Send a case through the proxy exactly as written: one HTTP request, or WebSocket frames.

HTTP goes through `http.client` (absolute-form for http://, a CONNECT tunnel for
https://), with the case's method, target, headers and body unchanged.
WebSocket frames are written by hand, because the cases set bits no client
library lets one set: fragments (`fin` false, then `continuation` frames) and
`rsv1` (a compressed frame) without having negotiated compression. What came
back is described in a short string; whether anything arrived is for the
caller to judge at the recording server.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import struct
import urllib.parse
from pathlib import Path

from bench.egress.corpus import Probe, WsFrame

_TIMEOUT = 15.0
_OPCODES = {"continuation": 0, "text": 1, "binary": 2}
_CLOSE = 8


class Replayer:
    """Sends probes through the proxy on 127.0.0.1:`port`, trusting its CA file."""

    def __init__(self, port: int, ca_file: Path | str) -> None:
        self.port = port
        self.tls = ssl.create_default_context(cafile=str(ca_file))

    def send(self, probe: Probe) -> str:
        """What the agent saw, e.g. "status 403" or "closed 1008"."""
        try:
            return self._websocket(probe) if probe.websocket else self._http(probe)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            return f"error {type(exc).__name__}: {exc}"[:200]

    def _http(self, probe: Probe) -> str:
        parts = urllib.parse.urlsplit(probe.url)
        host, port = _authority(parts)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=_TIMEOUT, context=self.tls
            )
            conn.set_tunnel(host, port)
            target = _target(parts)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=_TIMEOUT)
            target = probe.url
        try:
            conn.putrequest(probe.method, target, skip_accept_encoding=True)
            for name, value in probe.headers:
                conn.putheader(name, value)
            if probe.body and not any(k.lower() == "content-length" for k, _ in probe.headers):
                conn.putheader("Content-Length", str(len(probe.body)))
            conn.endheaders(probe.body or None)
            response = conn.getresponse()
            response.read()
            return f"status {response.status}"
        finally:
            conn.close()

    def _websocket(self, probe: Probe) -> str:
        parts = urllib.parse.urlsplit(probe.url)
        host, port = _authority(parts)
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=_TIMEOUT)
        try:
            if parts.scheme == "wss":
                sock.sendall(
                    f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
                )
                status = _status(_head(sock))
                if status != 200:
                    return f"tunnel status {status}"
                sock = self.tls.wrap_socket(sock, server_hostname=host)
                target = _target(parts)
            else:
                target = probe.url.replace("ws://", "http://", 1)
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                (
                    f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            status = _status(_head(sock))
            if status != 101:
                return f"handshake status {status}"
            sock.sendall(b"".join(frame_bytes(f) for f in probe.frames))
            closed = _await_close(sock, 2.0)
            if closed is None:
                sock.sendall(_frame(_CLOSE, struct.pack("!H", 1000), fin=True, rsv1=False))
                return "open"
            return closed
        finally:
            sock.close()


def frame_bytes(frame: WsFrame) -> bytes:
    return _frame(_OPCODES.get(frame.opcode, 1), frame.payload, frame.fin, frame.rsv1)


def _frame(opcode: int, payload: bytes, fin: bool, rsv1: bool) -> bytes:
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _await_close(sock: socket.socket, wait: float) -> str | None:
    """ "closed CODE" once the proxy closes (frame or connection), None if it stays open."""
    sock.settimeout(wait)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return "connection closed"
            data += chunk
            code = _close_code(data)
            if code is not None:
                return code
    except TimeoutError:
        return None
    except OSError as exc:
        return f"connection {type(exc).__name__}"


def _close_code(data: bytes) -> str | None:
    """Walk the server's (unmasked) frames; the close frame's code, if one came."""
    pos = 0
    while pos + 2 <= len(data):
        opcode, size = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if size == 126:
            size, pos = struct.unpack("!H", data[pos : pos + 2])[0], pos + 2
        elif size == 127:
            size, pos = struct.unpack("!Q", data[pos : pos + 8])[0], pos + 8
        if pos + size > len(data):
            return None
        if opcode == _CLOSE:
            body = data[pos : pos + size]
            return f"closed {struct.unpack('!H', body[:2])[0]}" if len(body) >= 2 else "closed"
        pos += size
    return None


def _head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def _status(head: bytes) -> int:
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def _authority(parts: urllib.parse.SplitResult) -> tuple[str, int]:
    default = 443 if parts.scheme in ("https", "wss") else 80
    host = parts.netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host.split("]")[0] + "]", parts.port or default
    return host.split(":")[0], parts.port or default


def _target(parts: urllib.parse.SplitResult) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
