"""Asking dnsmasq, which listens on loopback behind the front, for what the judge allowed.

UDP queries share one socket, told apart by their id; a TCP query (the agent asked
over TCP, usually after a truncated answer) gets its own connection. Nothing is
retried here: an agent's resolver retries, and each retry is judged and audited.
"""

from __future__ import annotations

import asyncio
import random
import socket

import dns.exception
import dns.message

from agentcage.dns.wire import reply_to

LOOPBACK = "127.0.0.1"
# Longer than dnsmasq takes to give up on its upstreams, so its own answer comes first.
TIMEOUT = 10.0
MAX_IN_FLIGHT = 1024


class ForwardError(Exception):
    """No usable answer from dnsmasq; the agent gets SERVFAIL."""


class _Replies(asyncio.DatagramProtocol):
    def __init__(self, pending: dict[int, asyncio.Future[bytes]]) -> None:
        self._pending = pending

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 2:
            return
        waiter = self._pending.pop(int.from_bytes(data[:2], "big"), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable while dnsmasq restarts: the waiter times out


class DnsmasqClient:
    def __init__(self, port: int) -> None:
        self.port = port
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._transport: asyncio.DatagramTransport | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Replies(self._pending), local_addr=(LOOPBACK, 0), family=socket.AF_INET
        )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        for waiter in self._pending.values():
            waiter.cancel()
        self._pending.clear()

    async def ask(self, query: dns.message.Message, tcp: bool) -> dns.message.Message:
        try:
            data = await asyncio.wait_for(
                self._tcp(query) if tcp else self._udp(query), timeout=TIMEOUT
            )
            return reply_to(query, data)
        except TimeoutError as exc:
            raise ForwardError(f"no answer from dnsmasq within {TIMEOUT:.0f}s") from exc
        except OSError as exc:
            raise ForwardError(f"cannot reach dnsmasq: {exc.strerror or exc}") from exc
        except (dns.exception.DNSException, asyncio.IncompleteReadError, ValueError) as exc:
            raise ForwardError(f"unusable answer from dnsmasq: {exc}") from exc

    async def _udp(self, query: dns.message.Message) -> bytes:
        if self._transport is None or len(self._pending) >= MAX_IN_FLIGHT:
            raise ForwardError(f"more than {MAX_IN_FLIGHT} queries waiting for dnsmasq")
        while query.id in self._pending:
            query.id = random.randrange(65536)
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[query.id] = waiter
        try:
            self._transport.sendto(query.to_wire(), (LOOPBACK, self.port))
            return await waiter
        finally:
            if self._pending.get(query.id) is waiter:
                del self._pending[query.id]

    async def _tcp(self, query: dns.message.Message) -> bytes:
        reader, writer = await asyncio.open_connection(LOOPBACK, self.port)
        try:
            wire = query.to_wire()
            writer.write(len(wire).to_bytes(2, "big") + wire)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        finally:
            writer.close()


def free_loopback_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (for dnsmasq to take right away)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise OSError("no loopback port free for both UDP and TCP")
