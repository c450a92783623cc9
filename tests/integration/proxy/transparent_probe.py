"""Programs that ignore proxy settings, through DNS steering and the transparent listeners.

Run by `test_transparent.py` inside a fresh network and mount namespace
(tests/support/netns.py), so fixed ports and a private /etc/resolv.conf are the test's
own. The world in there:

    127.0.0.1:53     `agentcage dns run --steer-to 127.0.0.2` (the resolver in resolv.conf)
    127.0.0.1:<n>    the fake internet's DNS: every name -> 127.0.0.3
    127.0.0.1:<m>    `agentcage proxy run --transparent 127.0.0.2` (explicit listener)
    127.0.0.2:80,443 its transparent listeners (and :8443, opened by network.ports)
    127.0.0.3:80,443 the recording upstream

Each client runs with no proxy settings (or settings it ignores), and the outcome of
each case is written as JSON to the path given as the argument.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import trustme
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from agentcage.cage import netcheck
from tests.support.dns_sidecar import RunningSidecar, addresses, rcode
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

REAL_KEY = "sk-ant-api03-REALsecretVALUE0123456789abcdefXYZ"
PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"
STEER = "127.0.0.2"
ORIGIN = "127.0.0.3"
OPAQUE_PORT = 2222
NAMES = ["api.anthropic.com", "anthropic.com", "example.com", "attacker.example"]

CONFIG = """
name: transparent
container:
  image: docker.io/library/python:3.12-slim
secret_injection:
  - env: ANTHROPIC_API_KEY
    inject_to: [anthropic.com]
    places: [headers, query, body, websocket]
domains:
  allow: [anthropic.com, example.com]
dns_servers: ["{dns}"]
network:
  allow_cidrs: [127.0.0.0/8]
  ports:
    - host: example.com
      port: 8443
    - host: example.com
      port: 2222
      protocol: opaque
rate_limit: false
logging:
  dns_queries: all
"""


def curl(*args: str, ca: Path, noproxy: bool = True) -> dict[str, Any]:
    """curl with proxies off (unless `noproxy` is False); status, body and exit code."""
    off = ["--noproxy", "*"] if noproxy else []
    done = subprocess.run(
        ["curl", "-sS", *off, "--max-time", "10", "--cacert", str(ca),
         "-o", "-", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HTTPS_PROXY": "http://127.0.0.9:9", "HTTP_PROXY": "http://127.0.0.9:9"},
    )  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    return {"exit": done.returncode, "status": int(status or 0), "body": body, "err": done.stderr}


def node_fetch(url: str, ca: Path) -> dict[str, Any]:
    # HTTPS_PROXY points nowhere: Node's fetch ignores it, which is the point.
    script = f"""
fetch({json.dumps(url)}, {{method: "POST", body: "k={PLACEHOLDER}",
    headers: {{"x-api-key": "{PLACEHOLDER}"}}}})
  .then(async r => console.log(JSON.stringify({{status: r.status, body: await r.text()}})))
  .catch(e => console.log(JSON.stringify({{error: String(e.cause || e)}})));
"""
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(ca), "HTTPS_PROXY": "http://127.0.0.9:9"}
    done = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, env=env, timeout=30
    )
    try:
        return json.loads(done.stdout)  # type: ignore[no-any-return]
    except ValueError:
        return {"error": done.stdout + done.stderr}


def python_urllib(url: str, ca: Path) -> dict[str, Any]:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # proxies disabled
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(ca))),
    )
    request = urllib.request.Request(
        url, data=f"k={PLACEHOLDER}".encode(), headers={"x-api-key": PLACEHOLDER}
    )
    try:
        with opener.open(request, timeout=10) as response:
            return {"status": response.status, "body": response.read().decode()}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read().decode()}


def websocket(host: str, ca: Path) -> dict[str, Any]:
    """A WebSocket over TLS to `host`:443 as resolved by the system; one echoed message."""
    address = socket.gethostbyname(host)
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((address, 443), timeout=5)
    sock = context.wrap_socket(raw, server_hostname=host)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host=host, target="/ws")))
    events: list[Any] = []
    sent = False
    while len([e for e in events if isinstance(e, TextMessage)]) < 1:
        data = sock.recv(65536)
        ws.receive_data(data or None)
        events.extend(ws.events())
        if not sent and any(isinstance(e, AcceptConnection) for e in events):
            sock.sendall(ws.send(TextMessage(data=f"token={PLACEHOLDER}")))
            sent = True
        if not data or any(isinstance(e, CloseConnection) for e in events):
            break
    sock.close()
    texts = [e.data for e in events if isinstance(e, TextMessage)]
    return {"accepted": sent, "echo": texts}


def raw_exchange(address: str, port: int, payload: bytes) -> dict[str, Any]:
    """Connect, send, read until the peer closes; what came back, or the error."""
    try:
        with socket.create_connection((address, port), timeout=5) as sock:
            sock.sendall(payload)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            return {"connected": True, "received": received.decode("latin-1")}
    except OSError as exc:
        return {"connected": False, "error": type(exc).__name__}


class Echo(socketserver.ThreadingTCPServer):
    """A raw TCP service on ORIGIN:2222 that answers every chunk with `echo:` + the chunk."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((ORIGIN, OPAQUE_PORT), _EchoHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(b"echo:" + data)


def opaque_exchange() -> dict[str, Any]:
    with socket.create_connection((STEER, OPAQUE_PORT), timeout=5) as sock:
        sock.sendall(b"SSH-2.0-probe\r\n")
        answer = sock.recv(65536)
    return {"answer": answer.decode("latin-1")}


def opaque_via_connect(proxy_port: int, host: str) -> dict[str, Any]:
    """The opaque port through the explicit proxy: CONNECT host:2222, then raw bytes."""
    try:
        with socket.create_connection(("127.0.0.1", proxy_port), timeout=5) as sock:
            target = f"{host}:{OPAQUE_PORT}"
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head = sock.recv(4096).decode("latin-1")
            sock.sendall(b"SSH-2.0-explicit\r\n")
            answer = sock.recv(65536)
            client = "{}:{}".format(*sock.getsockname())
    except OSError as exc:
        return {"error": type(exc).__name__}
    status = head.split("\r\n")[0]
    return {"connect": status, "answer": answer.decode("latin-1"), "client": client}


def probe(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        resolv = tmp / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")
        subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
        with (
            FakeDns({name: [ORIGIN] for name in NAMES}) as internet_dns,
            Upstream(trustme.CA(), NAMES, address=ORIGIN, ports=(443, 80)) as upstream,
            Echo(),
        ):
            config = tmp / "config.yaml"
            config.write_text(CONFIG.format(dns=internet_dns.address))
            sidecar = RunningSidecar(config, tmp / "dns.jsonl", port=53, args=["--steer-to", STEER])
            proxy = ProxyProcess(
                config,
                tmp,
                upstream_ca=upstream.ca_pem,
                env={"ANTHROPIC_API_KEY": REAL_KEY},
                extra_args=["--transparent", STEER],
            ).start()
            report: dict[str, Any] = {}
            try:
                report = cases(proxy.ca_cert, sidecar)
                report["opaque_explicit"] = opaque_via_connect(proxy.port, "example.com")
                # Another host on the opaque port: a raw tunnel, refused as ever.
                report["opaque_other_host"] = opaque_via_connect(proxy.port, "anthropic.com")
                proxy.wait_for_audit(lambda r: r.get("path") == "/reflect/node")
            finally:
                report["proxy_exit"] = proxy.stop()
                sidecar.proc.terminate()
                sidecar.proc.wait(10)
            report["proxy_stderr"] = proxy.stderr
            report["audit"] = proxy.audit()
            report["dns_audit"] = sidecar.records()
            report["received"] = [
                {
                    "path": r.path,
                    "scheme": r.scheme,
                    "host": r.host,
                    "key": r.header("x-api-key"),
                    "body": r.body.decode("latin-1"),
                    "ws": [m if isinstance(m, str) else "" for m in r.ws_messages],
                }
                for r in upstream.received
            ]
    out.write_text(json.dumps(report))


def cases(ca: Path, sidecar: RunningSidecar) -> dict[str, Any]:
    a, aaaa = sidecar.ask("api.anthropic.com"), sidecar.ask("api.anthropic.com", "AAAA")
    unlisted = sidecar.ask("attacker.example")
    key = f"x-api-key: {PLACEHOLDER}"
    body = f"k={PLACEHOLDER}"
    return {
        "dns": {
            "a": addresses(a),
            "aaaa": [rcode(aaaa), addresses(aaaa)],
            "unlisted": [rcode(unlisted), addresses(unlisted)],
        },
        "curl_https": curl("-H", key, "--data-binary", body,
                           "https://api.anthropic.com/reflect/curl", ca=ca),
        "curl_http": curl("http://example.com/plain", ca=ca),
        "node": node_fetch("https://api.anthropic.com/reflect/node", ca),
        "urllib": python_urllib("https://api.anthropic.com/reflect/urllib", ca),
        "websocket": websocket("api.anthropic.com", ca),
        "unlisted_name": curl("https://attacker.example/unlisted", ca=ca),
        "unlisted_direct": curl("--resolve", f"attacker.example:443:{STEER}",
                                "https://attacker.example/direct", ca=ca),
        "sni_host_mismatch": curl("-H", "Host: anthropic.com",
                                  "https://example.com/mismatch", ca=ca),
        "host_port_mismatch": curl("-H", "Host: example.com:8443",
                                   "https://example.com/port", ca=ca),
        "bare_ip_tls": curl("-k", f"https://{STEER}/bare", ca=ca),
        "plain_on_tls_port": raw_exchange(
            STEER, 443, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
        ),
        "connect_on_transparent": curl("-p", "--proxy", f"http://{STEER}:80",
                                       "https://example.com/connect", ca=ca, noproxy=False),
        "port_rule_open": curl("https://example.com:8443/extra", ca=ca),
        "port_rule_closed": curl("https://api.anthropic.com:8443/extra", ca=ca),
        "opaque": opaque_exchange(),
        "tcp_5432": raw_exchange(STEER, 5432, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
        "verify": verify_checks(ca),
    }  # fmt: skip


def verify_checks(ca: Path) -> dict[str, list[Any]]:
    """`cage verify`'s transparent-path checks, run from this namespace as the agent."""
    os.environ["SSL_CERT_FILE"] = str(ca)  # as the cage sets it for the agent
    results = {}
    for name, check in netcheck.transparent_checks(STEER, "api.anthropic.com"):
        results[name] = list(check())
    return results


if __name__ == "__main__":
    probe(Path(sys.argv[1]))
