"""An upstream that records the exact bytes each connection delivers (TLS or clear text).

Where `upstream.Upstream` shows what a well-behaved HTTP server parsed, this one
shows what went over the wire, so a test can see a second request smuggled
inside the first, an absolute-form request line or a header split in two.
Every request head gets `200 ok` (the body announced by Content-Length is read
first), so a client on the far side sees one answer per request it thinks it
sent, and a smuggled request would earn a second one.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
from pathlib import Path

import trustme

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


class RawUpstream:
    """Listens on 127.0.0.1: `tls_port` (certificate for `names`) and `plain_port`.

    A connection idle for `idle_close` seconds is closed without a word, as servers
    close kept-alive connections they no longer want.
    """

    def __init__(self, ca: trustme.CA, names: list[str], *, idle_close: float = 10) -> None:
        self._idle_close = idle_close
        self._dir = tempfile.TemporaryDirectory(prefix="agentcage-rawupstream-")
        cert = ca.issue_cert(*names, "127.0.0.1")
        certfile = Path(self._dir.name, "cert.pem")
        keyfile = Path(self._dir.name, "key.pem")
        certfile.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(keyfile))
        self.ca_pem = Path(self._dir.name, "ca.pem")
        ca.cert_pem.write_to_path(str(self.ca_pem))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(str(certfile), str(keyfile))
        self._context.set_alpn_protocols(["http/1.1"])
        self._tls = _listen()
        self._plain = _listen()
        self._lock = threading.Lock()
        self._connections: list[bytearray] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._accept, args=(sock, tls), daemon=True)
            for sock, tls in ((self._tls, True), (self._plain, False))
        ]

    @property
    def tls_port(self) -> int:
        return int(self._tls.getsockname()[1])

    @property
    def plain_port(self) -> int:
        return int(self._plain.getsockname()[1])

    @property
    def connections(self) -> list[bytes]:
        """The bytes each connection delivered so far, in order of arrival."""
        with self._lock:
            return [bytes(data) for data in self._connections]

    @property
    def wire(self) -> bytes:
        return b"".join(self.connections)

    def clear(self) -> None:
        with self._lock:
            self._connections.clear()

    def start(self) -> RawUpstream:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for sock in (self._tls, self._plain):
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._dir.cleanup()

    def __enter__(self) -> RawUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket, tls: bool) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, tls), daemon=True).start()

    def _serve(self, conn: socket.socket, tls: bool) -> None:
        record = bytearray()
        with self._lock:
            self._connections.append(record)
        conn.settimeout(self._idle_close)
        try:
            stream: socket.socket = (
                self._context.wrap_socket(conn, server_side=True) if tls else conn
            )
            pending = b""
            while chunk := stream.recv(65536):
                with self._lock:
                    record += chunk
                pending += chunk
                while (end := pending.find(b"\r\n\r\n")) >= 0:
                    length = _content_length(pending[:end])
                    if len(pending) < end + 4 + length:
                        break
                    pending = pending[end + 4 + length :]
                    stream.sendall(ANSWER)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return 0


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock
