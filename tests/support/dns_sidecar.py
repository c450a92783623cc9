"""A hermetic DNS world on loopback: a recording fake upstream and the real sidecar.

The fake upstream is the only "internet": it answers every name with documentation
addresses and records each query it receives, so tests can assert what never left
the cage. The sidecar is the real `agentcage dns run` CLI running real dnsmasq.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
from ruamel.yaml import YAML

UPSTREAM_V4 = "203.0.113.10"
UPSTREAM_V6 = "2001:db8::10"


class _UpstreamUDP(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(self.server.upstream.answer(data), self.client_address)  # type: ignore[attr-defined]


class _UpstreamTCP(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while (size := self.rfile.read(2)) and len(size) == 2:
            data = self.rfile.read(int.from_bytes(size, "big"))
            reply = self.server.upstream.answer(data)  # type: ignore[attr-defined]
            self.wfile.write(len(reply).to_bytes(2, "big") + reply)


class _UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeUpstream:
    """Answers A/AAAA/TXT/MX for any name; remembers every (name, type) it was asked,
    and every message exactly as it arrived (`wires`)."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, str]] = []
        self.wires: list[bytes] = []
        self._lock = threading.Lock()
        self._udp, self._tcp = self._bind_pair()
        self.port = self._udp.server_address[1]
        for server in (self._udp, self._tcp):
            server.upstream = self  # type: ignore[attr-defined]
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()

    @staticmethod
    def _bind_pair() -> tuple[_UDPServer, _TCPServer]:
        # UDP picks a free port; TCP on the same number may be taken: try another.
        for _ in range(50):
            udp = _UDPServer(("127.0.0.1", 0), _UpstreamUDP)
            try:
                return udp, _TCPServer(("127.0.0.1", udp.server_address[1]), _UpstreamTCP)
            except OSError:
                udp.server_close()
        raise RuntimeError("no loopback port free for both UDP and TCP")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answer(self, data: bytes) -> bytes:
        query = dns.message.from_wire(data)
        question = query.question[0]
        qtype = dns.rdatatype.to_text(question.rdtype)
        name = question.name.to_text(omit_final_dot=True).lower()
        with self._lock:
            self.queries.append((name, qtype))
            self.wires.append(data)
        response = dns.message.make_response(query)
        rdata = {
            "A": UPSTREAM_V4,
            "AAAA": UPSTREAM_V6,
            "TXT": '"from-upstream"',
            "MX": f"10 mail.{name}.",
        }.get(qtype)
        if rdata is not None:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", qtype, rdata))
        return response.to_wire()

    def names(self) -> set[str]:
        with self._lock:
            return {name for name, _ in self.queries}

    def saw(self, name: str) -> bool:
        return any(seen == name or seen.endswith("." + name) for seen in self.names())

    def close(self) -> None:
        for server in (self._udp, self._tcp):
            server.shutdown()
            server.server_close()


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port")


def ask(port: int, name: str, qtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, qtype)
    if tcp:
        return dns.query.tcp(query, "127.0.0.1", port=port, timeout=3)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=3)


def rcode(message: dns.message.Message) -> str:
    return dns.rcode.to_text(message.rcode())


def addresses(message: dns.message.Message) -> list[str]:
    return [item.to_text() for rrset in message.answer for item in rrset]


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout")
        time.sleep(0.05)


def write_config(path: Path, upstream: FakeUpstream, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "name": "dnstest",
        "container": {"image": "docker.io/library/python:3.12-slim"},
        "domains": {"allow": ["allowed.example", "workers.dev"]},
        "dns_servers": [upstream.address],
        "logging": {"dns_queries": "all"},
    }
    data.update(overrides)
    yaml = YAML()
    with path.open("w") as handle:
        yaml.dump(data, handle)
    return path


class RunningSidecar:
    """`agentcage dns run` as a child process on a free loopback port."""

    def __init__(
        self,
        config: Path,
        audit_log: Path,
        port: int | None = None,
        prefix: Sequence[str] = (),
        args: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.audit_log = audit_log
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [
                *prefix, sys.executable, "-c", "from agentcage.cli.main import main; main()",
                "dns", "run", "-c", str(config), "--listen", f"127.0.0.1:{self.port}",
                "--audit-log", str(audit_log), *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self._err = b""
        self.banner = self._banner(15.0)

    def _banner(self, timeout: float) -> str:
        """Read stderr up to the `listening on` line (dnsmasq's messages come first)."""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            chunk = os.read(fd, 65536) if ready else b""
            self._err += chunk
            for line in self._err.decode(errors="replace").splitlines():
                if line.startswith("listening on "):
                    return line
            if ready and not chunk:
                break  # EOF: the sidecar exited
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"sidecar did not start: {self._err.decode(errors='replace')}")

    def ask(self, name: str, qtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
        return ask(self.port, name, qtype, tcp=tcp)

    def records(self) -> list[dict[str, Any]]:
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line]

    def record_for(self, qname: str, qtype: str = "A") -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next(
                (r for r in self.records() if r["qname"] == qname and r["qtype"] == qtype), None
            )

        found: dict[str, Any] = wait_for(find)
        return found

    def dnsmasq_pid(self) -> int:
        """The sidecar's dnsmasq child (waits through a restart)."""
        task = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pid: str = wait_for(lambda: task.read_text().split()[:1])[0]
        return int(pid)

    def answers(self, name: str, qtype: str = "A") -> list[str] | None:
        """The answer addresses, or None while the sidecar is not answering (restart)."""
        try:
            return addresses(self.ask(name, qtype))
        except (OSError, dns.exception.Timeout):
            return None

    def hup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def stderr_text(self) -> str:
        """What the sidecar printed up to its `listening on` line."""
        return self._err.decode(errors="replace")

    def stop(self) -> tuple[int, str]:
        """SIGTERM unless it exited already; (exit status, all of its stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self._err += err or b""
        return self.proc.returncode, self._err.decode(errors="replace")
