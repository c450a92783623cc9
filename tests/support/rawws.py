"""WebSocket at the frame level, for control frames: a recording server and a raw client.

The hypercorn upstream speaks ASGI, which hides pings, pongs and close reasons;
`FrameRecorder` is a plain WebSocket server (wsproto, clear text on 127.0.0.1)
that records every frame it receives, answers pings with pongs and close frames
with close frames, echoes messages, and on a text message
  `send-ping <text>`  sends a ping carrying <text>,
  `send-pong <text>`  sends an unsolicited pong carrying <text>,
  `send-close <text>` closes with code 4000 and reason <text>.
`RawClient` opens a WebSocket through the proxy (absolute-form request) and
sends and receives wsproto events, control frames included.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

Frame = tuple[str, object]  # ("text", str), ("binary", bytes), ("ping"|"pong", bytes),
# ("close", (code, reason))


@dataclass
class Session:
    path: str
    frames: list[Frame] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)


class FrameRecorder:
    """Use as a context manager; `sessions` lists connections in arrival order."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.sessions: list[Session] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def session(self, path: str, timeout: float = 5) -> Session:
        """The latest session on `path`, waiting for it to end (the peer closed)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [s for s in self.sessions if s.path == path]
            if found and found[-1].ended.wait(max(0.0, deadline - time.monotonic())):
                return found[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no ended session on {path}: {self.sessions}")
            time.sleep(0.02)

    def __enter__(self) -> FrameRecorder:
        thread = threading.Thread(target=self._accept, name="frame-recorder", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        session: Session | None = None
        conn.settimeout(30)
        try:
            while True:
                data = conn.recv(65536)
                ws.receive_data(data or None)
                for event in ws.events():
                    out, done = self._answer(ws, event, session)
                    if isinstance(event, Request):
                        session = Session(event.target)
                        self.sessions.append(session)
                    if out:
                        conn.sendall(out)
                    if done:
                        return
                if not data:
                    return
        except OSError:
            return
        finally:
            conn.close()
            if session is not None:
                session.ended.set()

    @staticmethod
    def _answer(ws: WSConnection, event: Event, session: Session | None) -> tuple[bytes, bool]:
        if isinstance(event, Request):
            return ws.send(AcceptConnection()), False
        assert session is not None
        if session.path.startswith("/quiet") and not isinstance(event, CloseConnection):
            # Records only: an answer still unread when the proxy closes makes its
            # kernel reset the connection, and a reset can drop frames not yet read here.
            if isinstance(event, TextMessage):
                session.frames.append(("text", event.data))
            elif isinstance(event, BytesMessage):
                session.frames.append(("binary", bytes(event.data)))
            elif isinstance(event, (Ping, Pong)):
                session.frames.append((type(event).__name__.lower(), bytes(event.payload)))
            return b"", False
        if isinstance(event, TextMessage):
            session.frames.append(("text", event.data))
            command, _, text = event.data.partition(" ")
            if command == "send-ping":
                return ws.send(Ping(text.encode())), False
            if command == "send-pong":
                return ws.send(Pong(text.encode())), False
            if command == "send-close":
                return ws.send(CloseConnection(4000, text)), False
            return ws.send(TextMessage(event.data)), False
        if isinstance(event, BytesMessage):
            session.frames.append(("binary", bytes(event.data)))
            return ws.send(BytesMessage(event.data)), False
        if isinstance(event, Ping):
            session.frames.append(("ping", bytes(event.payload)))
            return ws.send(event.response()), False
        if isinstance(event, Pong):
            session.frames.append(("pong", bytes(event.payload)))
            return b"", False
        if isinstance(event, CloseConnection):
            session.frames.append(("close", (event.code, event.reason)))
            with contextlib.suppress(Exception):  # already closing: nothing to answer
                return ws.send(event.response()), True
            return b"", True
        return b"", False


class RawClient:
    """A WebSocket through the proxy at `proxy_port` to ws://`host`:`port``path`."""

    def __init__(self, proxy_port: int, host: str, port: int, path: str) -> None:
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
        self._pending: list[Event] = []
        target = f"{host}:{port}"
        self.send(Request(host=target, target=f"http://{target}{path}"))
        opened = self.receive()
        if isinstance(opened, RejectConnection):
            raise AssertionError(f"handshake refused: {opened.status_code}")
        assert isinstance(opened, AcceptConnection), opened

    def send(self, *events: Event) -> None:
        """Several events go out in one write, so the proxy reads them together."""
        self.sock.sendall(b"".join(self.ws.send(event) for event in events))

    def receive(self, timeout: float = 5) -> Event:
        """The next event; CloseConnection(1006) once the proxy has hung up."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no WebSocket event from the proxy")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            self.ws.receive_data(data or None)
            self._pending.extend(self.ws.events())
        return self._pending.pop(0)

    def until_closed(self, timeout: float = 5) -> CloseConnection:
        """Skips messages and pings; the close frame the proxy sent."""
        while True:
            event = self.receive(timeout)
            if isinstance(event, CloseConnection):
                return event
            if not isinstance(event, (Message, Ping, Pong)):
                raise AssertionError(f"unexpected event {event}")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
