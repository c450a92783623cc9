"""The sidecar's listening sockets: DNS over UDP and TCP, each message handed to a handler.

The handler gets the raw message, the client's address and the transport, and returns
the bytes to send back (or None for no answer). TCP connections carry messages with
a two-byte length prefix, answered in order; idle ones are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import cast

from agentcage.dns.render import Listen
from agentcage.errors import DnsError

Handler = Callable[[bytes, str, bool], Awaitable[bytes | None]]
TCP_IDLE = 10.0
MAX_TCP_CONNECTIONS = 64
_BACKLOG = 128


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, front: Front) -> None:
        self._front = front
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._front.spawn(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self._front.handler(data, _host(addr), False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # an unreachable client: nothing to do


def _host(addr: tuple[str, int] | tuple[str, int, int, int]) -> str:
    return addr[0].split("%", 1)[0]


def _socket(listen: Listen, kind: socket.SocketKind) -> socket.socket:
    family = socket.AF_INET6 if listen.address.version == 6 else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # `[::]` means every address, IPv4 included, as it did for dnsmasq.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((str(listen.address), listen.port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise DnsError(
            f"cannot listen on {listen}: {exc.strerror}",
            hint="is another DNS server using the address, or is it not on this host?",
        ) from exc
    return sock


FrontSockets = tuple[socket.socket, socket.socket]  # UDP, TCP


def bind_front(listen: Listen) -> FrontSockets:
    """Both sockets bound, the TCP one listening; `DnsError` if either address is taken.

    From here on a query waits in the kernel (a datagram in the receive buffer, a TCP
    connection in the accept queue) until `Front.start` serves it: none is refused,
    and none is answered before it is judged.
    """
    udp = _socket(listen, socket.SOCK_DGRAM)
    try:
        tcp = _socket(listen, socket.SOCK_STREAM)
        tcp.listen(_BACKLOG)
    except BaseException:
        udp.close()
        raise
    return udp, tcp


class Front:
    def __init__(self, listen: Listen, handler: Handler) -> None:
        self.listen = listen
        self.handler = handler
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._connections = 0

    def bind(self, sockets: FrontSockets | None = None) -> None:
        """Take both addresses now (serving starts later); `DnsError` if either is taken.

        `sockets`: ones `bind_front` took already (`dns run` binds them before it loads
        the query engine, and says READY=1 then: cli/dns_cmd.py).
        """
        self._sockets = sockets if sockets is not None else bind_front(self.listen)

    async def start(self) -> None:
        """Serve on the bound sockets."""
        assert self._sockets is not None, "bind() first"
        udp, tcp = self._sockets
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=udp)
        self._tcp = await asyncio.start_server(self._stream, sock=tcp, backlog=_BACKLOG)

    def spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        self._connections += 1
        client = _host(writer.get_extra_info("peername") or ("", 0))
        try:
            while True:
                size = int.from_bytes(
                    await asyncio.wait_for(reader.readexactly(2), TCP_IDLE), "big"
                )
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE)
                reply = await self.handler(data, client, True)
                if reply is None:
                    break
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass  # idle, closed or reset by the client
        finally:
            self._connections -= 1
            writer.close()

    async def close(self) -> None:
        if self._udp is None and self._sockets is not None:  # bound, never served
            for sock in self._sockets:
                sock.close()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)
        for task in list(self._tasks):
            task.cancel()
