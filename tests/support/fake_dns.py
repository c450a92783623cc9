"""A tiny authoritative DNS server on 127.0.0.1 for tests (dnspython wire format)."""

from __future__ import annotations

import ipaddress
import socket
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


class FakeDns:
    """Answers A/AAAA for the names it was given, NXDOMAIN for everything else.

    `records` maps a lower-case name to its addresses (IPv4 and/or IPv6 strings).
    `queries` lists (name, type) in arrival order. Use as a context manager or
    call `start()`/`stop()`.
    """

    def __init__(self, records: Mapping[str, Iterable[str]] | None = None, ttl: int = 60) -> None:
        if records is None:
            records = {name: ["127.0.0.1"] for name in DEFAULT_NAMES}
        self.records = {name.lower().rstrip("."): list(ips) for name, ips in records.items()}
        self.ttl = ttl
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, the form `dns_servers` takes."""
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, *addresses: str) -> None:
        self.records[name.lower().rstrip(".")] = list(addresses)

    def start(self) -> FakeDns:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> FakeDns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self._answer(dns.message.from_wire(data))
            except Exception:
                continue  # garbage in: a real server would drop it too
            self._sock.sendto(reply.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        version = {"A": 4, "AAAA": 6}.get(rdtype)
        found = [ip for ip in self.records[name] if ipaddress.ip_address(ip).version == version]
        if found:
            response.answer.append(
                dns.rrset.from_text_list(question.name, self.ttl, "IN", rdtype, found)
            )
        return response
