"""Default deny with audit: the cage's steering and the real proxy's deny listeners.

Run by `test_deny.py` as root inside a fresh network and mount namespace (the
"proxy" side, tests/support/netns.py). The probe makes a second network namespace for
the agent and joins them with a veth pair:

    agent ns  10.77.0.100 --veth-- 10.77.0.3  proxy ns (this one)
              default via 10.77.0.3            `agentcage proxy run --transparent
                                               10.77.0.3 --deny-flows`
                                    10.77.0.2  a stand-in DNS sidecar on port 53

and installs the steering with the same module the cage's one-shot containers run
(`python -m agentcage.cage.steering`), with `--dns 10.77.0.2` as in a microVM guest,
where the DNS sidecar's address sits in the proxy's namespace. Nothing has a route
beyond the two namespaces: the "outside" addresses the agent dials exist nowhere. Each
case's outcome and every audit line are written as JSON to the path given as the
argument.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agentcage.config.constants import DENY_PORT
from tests.support.proxy import ProxyProcess

PROXY = "10.77.0.3"
DNS = "10.77.0.2"
AGENT = "10.77.0.100"
OUTSIDE = "203.0.113.7"
SCAN = "203.0.113.8"
BURST = 1000
MODULE = "tests.integration.proxy.deny_probe"
CONFIG = "name: deny\ncontainer:\n  image: x\ndomains:\n  allow: [example.com]\n"


def sh(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr}")
    return done.stdout


def in_agent(pid: int, *argv: str) -> list[str]:
    return ["nsenter", "-t", str(pid), "-n", *argv]


def steering(*args: str) -> list[str]:
    return [sys.executable, "-m", "agentcage.cage.steering", *args]


def tcp(host: str, port: int) -> dict[str, Any]:
    """Connect, then read: what a client of a refused flow sees."""
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.settimeout(5)
            data = conn.recv(100)
    except OSError as exc:
        return {"outcome": type(exc).__name__, "errno": exc.errno}
    return {"outcome": "closed" if not data else "data", "data": data.decode(errors="replace")}


def udp(host: str, port: int) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        sock.sendto(b"\x1b" + b"\0" * 47, (host, port))  # an NTP client request
        try:
            sock.recv(512)
        except TimeoutError:
            return {"outcome": "unanswered"}
        except OSError as exc:
            return {"outcome": type(exc).__name__}
    return {"outcome": "answered"}


def dns_stand_in() -> None:
    """Port 53 on DNS, UDP and TCP: each answers `dns`, so the agent sees it got through."""
    datagrams = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    datagrams.bind((DNS, 53))
    stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stream.bind((DNS, 53))
    stream.listen(4)

    def answer_udp() -> None:
        while True:
            _, client = datagrams.recvfrom(512)
            datagrams.sendto(b"dns", client)

    def answer_tcp() -> None:
        while True:
            conn, _ = stream.accept()
            with conn:
                conn.sendall(b"dns")

    for serve in (answer_udp, answer_tcp):
        threading.Thread(target=serve, daemon=True).start()


def bare_ip_tls(host: str) -> dict[str, Any]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, 443), timeout=5) as raw,
            context.wrap_socket(raw) as tls,  # no server_hostname: no SNI
        ):
            tls.recv(10)
    except (OSError, ssl.SSLError) as exc:
        return {"outcome": type(exc).__name__}
    return {"outcome": "handshake completed"}


def burst(host: str, count: int) -> int:
    """`count` connection attempts to ports 1..count, as a port scan makes them."""
    refused = 0
    for port in range(1, count + 1):
        if tcp(host, port)["outcome"] != "data":
            refused += 1
    return refused


def agent_side() -> None:
    """The cases, run in the agent's namespace; the report as JSON on stdout."""
    out: dict[str, Any] = {
        "tcp22": tcp(OUTSIDE, 22),
        "tcp5432": tcp(OUTSIDE, 5432),
        "udp123": udp(OUTSIDE, 123),
        "bare_ip_tls": bare_ip_tls(OUTSIDE),
        "proxy22": tcp(PROXY, 22),
        "proxy_udp123": udp(PROXY, 123),
        "dns_udp53": udp(DNS, 53),
        "dns_tcp53": tcp(DNS, 53),
        "dns_tcp22": tcp(DNS, 22),
    }
    time.sleep(0.5)  # the single lines land before the burst fills the budget
    out["burst_refused"] = burst(SCAN, BURST)
    print(json.dumps(out))


def main(report: Path) -> None:
    holder = subprocess.Popen(["unshare", "--net", "sleep", "300"])
    try:
        time.sleep(0.2)
        pid = holder.pid
        sh("ip", "link", "add", "cage0", "type", "veth", "peer", "name", "eth0", "netns", str(pid))
        sh("ip", "addr", "add", f"{PROXY}/24", "dev", "cage0")
        sh("ip", "addr", "add", f"{DNS}/24", "dev", "cage0")
        sh("ip", "link", "set", "cage0", "up")
        for step in (["lo", "up"], ["eth0", "up"]):
            sh(*in_agent(pid, "ip", "link", "set", *step))
        sh(*in_agent(pid, "ip", "addr", "add", f"{AGENT}/24", "dev", "eth0"))
        Path("/proc/sys/net/ipv4/ip_forward").write_text("0\n")  # the proxy unit's sysctl
        # As in the runtime image (no netbase): `ip` cannot look up protocol names.
        sh("mount", "--bind", "/dev/null", "/etc/protocols")
        # Before the proxy's steering: the agent's route must not stay.
        early = subprocess.run(
            in_agent(pid, *steering("agent", PROXY)), capture_output=True, text=True, check=False
        )
        unsteered = {
            "exit": early.returncode,
            "stderr": early.stderr,
            "routes": sh(*in_agent(pid, "ip", "route")),
        }
        sh(*steering("proxy", PROXY, str(DENY_PORT), "80", "443", "--dns", DNS))
        dns_stand_in()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "cage.yaml").write_text(CONFIG)
            proxy = ProxyProcess(
                work / "cage.yaml",
                work,
                extra_args=["--transparent", PROXY, "--deny-flows"],
            ).start()
            try:
                sh(*in_agent(pid, *steering("agent", PROXY)))
                done = subprocess.run(
                    in_agent(pid, sys.executable, "-m", MODULE, "--agent"),
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                time.sleep(11)  # one budget window: the burst's summary line is written
            finally:
                proxy_exit = proxy.stop()
            result = {
                "agent_exit": done.returncode,
                "agent_stderr": done.stderr[-2000:],
                "agent": json.loads(done.stdout) if done.returncode == 0 else {},
                "proxy_exit": proxy_exit,
                "proxy_stderr": proxy.stderr[-2000:],
                "audit": proxy.audit(),
                "routes": sh(*in_agent(pid, "ip", "route")),
                "unsteered": unsteered,
            }
    finally:
        holder.kill()
        holder.wait()
    report.write_text(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:] == ["--agent"]:
        agent_side()
    else:
        main(Path(sys.argv[1]))
