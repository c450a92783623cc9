"""Deny listeners: every flow the agent aims anywhere but the proxy's services, refused and audited.

The agent's default route leads to the proxy's internal address, and nftables in the
proxy's network namespace (cage/steering.py, set up through nsenter) send
what arrives there to `DENY_PORT`:

- TCP is redirected (NAT) to the TCP listener on the proxy's address; the original
  destination is conntrack's, read with `SO_ORIGINAL_DST`. The connection is accepted,
  audited and reset: the client sees its connect succeed and then a reset, before any
  byte is read.
- UDP keeps its destination address (a local route delivers it to a socket bound to
  every address) and has its destination port moved into the source port, because
  conntrack cannot tell a UDP socket its original port. Nothing is answered.

One `kind: flow` line per refused flow, within `LineBudget` per client; what the budget
leaves out is one summary line (`extra.suppressed`). Nothing is ever forwarded: the
namespace has `ip_forward` off, so with or without these listeners the flow goes
nowhere. See docs/transparent.md.
"""

from __future__ import annotations

import logging
import socket
import struct
from typing import TYPE_CHECKING

from agentcage.audit.record import AuditRecord
from agentcage.audit.throttle import LineBudget
from agentcage.audit.writer import AuditWriter
from agentcage.config.constants import DENY_PORT
from agentcage.policy.types import Verdict
from agentcage.proxy.runtime import RuntimeHolder

if TYPE_CHECKING:
    # Only passed in: `proxy run` binds these sockets before it loads asyncio (early_start.py).
    import asyncio

logger = logging.getLogger(__name__)
INSPECTOR = "deny"
_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
_IP_PKTINFO = 8  # linux/in.h; struct in_pktinfo: ifindex, spec_dst, addr
_PKTINFO = struct.Struct("=i4s4s")
_BACKLOG = 512
_FLUSH_EVERY = 1.0  # seconds between looks for ended budget windows


def original_destination(conn: socket.socket) -> tuple[str, int]:
    """Where a redirected TCP connection was going, from conntrack."""
    raw = conn.getsockopt(socket.SOL_IP, _SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


def datagram_destination(ancillary: list[tuple[int, int, bytes]]) -> str | None:
    """The destination address of a received datagram, from its IP_PKTINFO."""
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == _IP_PKTINFO and len(data) >= _PKTINFO.size:
            return socket.inet_ntoa(_PKTINFO.unpack_from(data)[2])
    return None


class DenySockets:
    """The deny listeners' two sockets, bound before the proxy says READY=1 (early_start.py)."""

    def __init__(self, address: str, port: int = DENY_PORT) -> None:
        self.address = address
        self.port = port  # another only in tests, which must not need the real one free
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @property
    def addresses(self) -> tuple[str, str]:
        return f"{self.address}:{self.port}/tcp", f"0.0.0.0:{self.port}/udp"

    def open(self) -> DenySockets:
        """Bind both; OSError (a bad address, a port taken) before serving anything.

        From here on a redirected TCP connection waits in the accept queue and a datagram
        in the receive buffer until `DenyListeners.serve` reads them: none is lost
        unaudited, and a UDP flow never meets "port unreachable".
        """
        try:
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.tcp.bind((self.address, self.port))
            self.tcp.listen(_BACKLOG)
            self.tcp.setblocking(False)
            # Every address: redirected datagrams still carry the address they were sent to.
            self.udp.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
            self.udp.bind(("0.0.0.0", self.port))
            self.udp.setblocking(False)
        except OSError:
            self.close()
            raise
        return self

    def close(self) -> None:
        self.tcp.close()
        self.udp.close()


class DenyListeners:
    """The TCP and UDP deny listeners of one proxy, served on its event loop."""

    def __init__(
        self, sockets: DenySockets, holder: RuntimeHolder, audit: AuditWriter, budget: LineBudget
    ) -> None:
        self._address = sockets.address
        self._port = sockets.port
        self._holder = holder
        self._audit = audit
        self._budget = budget
        self._sockets = sockets
        self._tcp = sockets.tcp
        self._udp = sockets.udp
        self._flusher: asyncio.TimerHandle | None = None

    def serve(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self._tcp.fileno(), self._accept)
        loop.add_reader(self._udp.fileno(), self._receive)
        self._flusher = loop.call_later(_FLUSH_EVERY, self._flush, loop)

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flush_now()
        self._sockets.close()

    def _accept(self) -> None:
        for _ in range(_BACKLOG):
            try:
                conn, peer = self._tcp.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.error("deny listener: accept failed: %s", exc)
                return
            with conn:
                try:
                    host, port = original_destination(conn)
                except OSError:
                    host, port = self._address, self._port  # dialled directly
                # A reset, not a FIN: nothing was ever there to talk to.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # The line before the reset: a client that reads the log once its
                # connection fails finds it there.
                self._refused("tcp", peer[0], f"{peer[0]}:{peer[1]}", host, port)

    def _receive(self) -> None:
        for _ in range(_BACKLOG):
            try:
                _data, ancillary, _flags, peer = self._udp.recvmsg(1, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.error("deny listener: receive failed: %s", exc)
                return
            host = datagram_destination(ancillary) or self._address
            # The steering moved the destination port into the source port; the
            # client's own port is gone.
            self._refused("udp", peer[0], peer[0], host, peer[1])

    def _refused(self, protocol: str, source: str, client: str, host: str, port: int) -> None:
        if not self._budget.admit(source):
            return
        reason = (
            f"{protocol.upper()} to {host}:{port} refused: only HTTP(S) through the proxy "
            "leaves the cage (network.ports opens other ports for named hosts)"
        )
        self._write(protocol, client, host, port, reason, {})

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_now()
        self._flusher = loop.call_later(_FLUSH_EVERY, self._flush, loop)

    def _flush_now(self) -> None:
        for source, count in self._budget.ended():
            reason = (
                f"{count} more refused flows from {source} suppressed "
                f"(at most {self._budget.lines} lines per {self._budget.window:g} s)"
            )
            self._write("", source, "", 0, reason, {"suppressed": count})

    def _write(
        self,
        protocol: str,
        client: str,
        host: str,
        port: int,
        reason: str,
        extra: dict[str, object],
    ) -> None:
        line = AuditRecord(
            kind="flow",
            verdict=Verdict.BLOCK.value,
            cage=self._holder.current.cage,
            client=client,
            scheme=protocol,
            host=host,
            port=port,
            inspector=INSPECTOR,
            reason=reason,
            extra=extra,
        )
        try:
            self._audit.write(line)
        except OSError as exc:
            logger.error("cannot write the audit line of a refused flow: %s", exc)
