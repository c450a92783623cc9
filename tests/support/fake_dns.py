"""The fake DNS server for tests that run no container: UDP and TCP on one 127.0.0.1 port.

- `FakeDns(records)` answers A/AAAA for the names in `records` and NXDOMAIN for any
  other: the proxy's `dns_servers` in tests (by default `DEFAULT_NAMES` -> 127.0.0.1).
- `FakeDns.answering_anything()` answers every name (A `ANY_V4`, AAAA `ANY_V6`, TXT,
  MX): the DNS sidecar's upstream, where a test looks at what the sidecar let out.

Every question is recorded as it arrived: `queries` holds (name, type) pairs, `wires`
the raw messages. Start it with `start()` (or as a context manager), end it with `stop()`.
"""

from __future__ import annotations

import ipaddress
import socketserver
import threading
from collections.abc import Iterable, Mapping

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

DEFAULT_NAMES = (
    "api.anthropic.com",
    "anthropic.com",
    "github.com",
    "api.github.com",
    "attacker.example",
    "example.com",
    "internal.example",
)
# Documentation addresses: whatever a test does with them, nothing real is reached.
ANY_V4 = "203.0.113.10"
ANY_V6 = "2001:db8::10"


class _Datagram(socketserver.BaseRequestHandler):
    server: _UDPServer

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.fake.reply(data)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _Stream(socketserver.StreamRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        while (size := self.rfile.read(2)) and len(size) == 2:
            reply = self.server.fake.reply(self.rfile.read(int.from_bytes(size, "big")))
            if reply is None:
                return
            self.wfile.write(len(reply).to_bytes(2, "big") + reply)


class _UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    fake: FakeDns


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeDns


class FakeDns:
    """A/AAAA for the names in `records` (lower-case name -> IPv4 and/or IPv6 strings)."""

    def __init__(self, records: Mapping[str, Iterable[str]] | None = None, ttl: int = 60) -> None:
        if records is None:
            records = {name: ["127.0.0.1"] for name in DEFAULT_NAMES}
        self.records = {name.lower().rstrip("."): list(ips) for name, ips in records.items()}
        self.ttl = ttl
        self.anything = False
        self.rdata: dict[tuple[str, str], list[str]] = {}
        self.queries: list[tuple[str, str]] = []
        self.wires: list[bytes] = []
        self._lock = threading.Lock()
        self._servers = _bind_pair()
        for server in self._servers:
            server.fake = self
        self._threads: list[threading.Thread] = []

    @classmethod
    def answering_anything(cls) -> FakeDns:
        fake = cls({})
        fake.anything = True
        return fake

    @property
    def port(self) -> int:
        return int(self._servers[0].server_address[1])

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, the form `dns_servers` takes."""
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, *addresses: str) -> None:
        self.records[name.lower().rstrip(".")] = list(addresses)

    def set_rdata(self, name: str, rdtype: str, *texts: str) -> None:
        """Answer `rdtype` questions for `name` with these records (in presentation form)."""
        self.rdata[(name.lower().rstrip("."), rdtype)] = list(texts)

    def names(self) -> set[str]:
        with self._lock:
            return {name for name, _ in self.queries}

    def saw(self, name: str) -> bool:
        """Whether `name`, or a name below it, was asked for."""
        return any(seen == name or seen.endswith("." + name) for seen in self.names())

    def start(self) -> FakeDns:
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name="fake-dns", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            if self._threads:  # shutdown() waits for a serve_forever that never ran
                server.shutdown()
            server.server_close()
        self._threads.clear()

    def __enter__(self) -> FakeDns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reply(self, data: bytes) -> bytes | None:
        """The answer to the query in `data`; None for garbage, as a real server drops it."""
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append((name, rdtype))
            self.wires.append(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        rdata = self._rdata(name, rdtype)
        if rdata is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif rdata:
            response.answer.append(
                dns.rrset.from_text_list(question.name, self.ttl, "IN", rdtype, rdata)
            )
        return response.to_wire()

    def _rdata(self, name: str, rdtype: str) -> list[str] | None:
        """The answer's records, as text; None when the name does not exist."""
        if (name, rdtype) in self.rdata:
            return self.rdata[(name, rdtype)]
        if self.anything:
            text = _ANYTHING.get(rdtype)
            return [text.format(name=name)] if text else []
        if name not in self.records:
            return None
        version = {"A": 4, "AAAA": 6}.get(rdtype)
        return [ip for ip in self.records[name] if ipaddress.ip_address(ip).version == version]


_ANYTHING = {"A": ANY_V4, "AAAA": ANY_V6, "TXT": '"from-upstream"', "MX": "10 mail.{name}."}


def _bind_pair() -> tuple[_UDPServer, _TCPServer]:
    # UDP picks a free port; TCP on the same number may be taken: try another.
    for _ in range(50):
        udp = _UDPServer(("127.0.0.1", 0), _Datagram)
        try:
            return udp, _TCPServer(("127.0.0.1", udp.server_address[1]), _Stream)
        except OSError:
            udp.server_close()
    raise RuntimeError("no loopback port free for both UDP and TCP")
