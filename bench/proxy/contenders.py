"""What the proxy bench times, and what it times against: the recording upstream, bare
mitmdump, and the config `agentcage proxy run` is started with."""

from __future__ import annotations

import multiprocessing
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ORIGIN = "127.0.0.3"  # the upstream, on 443 as the transparent path requires
STEER = "127.0.0.2"  # the proxy's transparent listeners
NAME = "bench.local"
BENCH_SECRET = "bench-secret-value-0123456789abcdef"


def serve_upstream(
    ready: multiprocessing.Queue,  # type: ignore[type-arg]
    stop: multiprocessing.Event,  # type: ignore[valid-type]
    host: str = ORIGIN,
    ports: tuple[int, int] = (443, 80),
) -> None:
    import trustme
    from tests.support.upstream import Upstream

    # The explicit modes ask for the address itself; its certificate must name it.
    with Upstream(trustme.CA(), [NAME, host], address=host, ports=ports) as upstream:
        ready.put((upstream.tls_port, str(upstream.ca_pem)))
        stop.wait()


@dataclass
class Mode:
    name: str
    proxy_url: str | None
    verify: ssl.SSLContext
    pid: int | None = None  # the proxy process, whose CPU time is counted
    url: str = f"https://{ORIGIN}/reflect"
    # Where the client connects in place of the URL's host, still naming that host in
    # SNI and Host: the transparent listener, as a program steered there by DNS does.
    address: str | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mitmdump(workdir: Path, upstream_ca: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [
        str(Path(sys.executable).with_name("mitmdump")),
        "-q",
        "--listen-host", "127.0.0.1",
        "--listen-port", str(port),
        "--set", f"confdir={workdir / 'mitm-ca'}",
        "--set", f"ssl_verify_upstream_trusted_ca={upstream_ca}",
        "--set", "connection_strategy=lazy",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            ca = workdir / "mitm-ca" / "mitmproxy-ca-cert.pem"
            if ca.exists():
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mitmdump did not start")


def write_config(
    path: Path, *, dns: str | None = None, hosts: tuple[str, ...] = (ORIGIN, NAME), port: int = 443
) -> Path:
    """The bench cage: `hosts` allowed (on `port` too, when it is not 443)."""
    resolver = f'dns_servers: ["{dns}"]' if dns else ""
    ports = ", ".join(f"{{host: '{host}', port: {port}}}" for host in hosts if port != 443)
    path.write_text(
        f"""
name: bench
container: {{image: docker.io/library/python:3.12-slim}}
secret_injection:
  - env: BENCH_API_KEY
    inject_to: [api.example.com]
domains:
  allow: [{", ".join(hosts)}]
{resolver}
network:
  allow_cidrs: [127.0.0.0/8]
  ports: [{ports}]
rate_limit: false
logging:
  allowed_requests: true
"""
    )
    return path


def context(ca: Path | str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))
