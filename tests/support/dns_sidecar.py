"""The real `agentcage dns run` (real dnsmasq behind it) on loopback, and helpers to ask it.

Its upstream in tests is `FakeDns.answering_anything()` (`fake_dns.py`): the only
"internet", recording every query it receives, so tests can assert what never left
the cage.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
from ruamel.yaml import YAML

from tests.support.audit_lines import whole_records
from tests.support.fake_dns import FakeDns


def free_port(udp_address: str = "127.0.0.1") -> int:
    """A port free for TCP on 127.0.0.1 and for UDP on `udp_address` (0.0.0.0: every one)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((udp_address, 0))
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


def write_config(path: Path, upstream: FakeDns, **overrides: Any) -> Path:
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


_MAIN = "from agentcage.cli.main import main; main()"


class RunningSidecar:
    """`agentcage dns run` as a child process on a free loopback port."""

    def __init__(
        self,
        config: Path,
        audit_log: Path,
        port: int | None = None,
        prefix: Sequence[str] = (),
        args: Sequence[str] = (),
        before: str = "",
    ) -> None:
        """`before`: Python statements the child runs before the CLI's `main`."""
        self.config = config
        self.audit_log = audit_log
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [
                *prefix, sys.executable, "-c", f"{before}\n{_MAIN}",
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
        return whole_records(self.audit_log.read_text())

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
