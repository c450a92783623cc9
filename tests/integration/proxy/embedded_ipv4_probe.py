"""Requests to allowlisted names whose only answer is an IPv6 address embedding IPv4.

Run by `test_embedded_ipv4.py` inside a fresh network namespace (tests/support/netns.py):
were the proxy to connect to one of these addresses, it would find no route rather than
a NAT64 gateway. Starts a fake DNS, the loopback upstream and `agentcage proxy run`,
sends one HTTPS request per name plus a control request that must arrive, and writes
what happened as JSON to the path given as its argument.
"""

from __future__ import annotations

import json
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import trustme

from tests.integration.proxy.conftest import start_proxy
from tests.support.fake_dns import DEFAULT_NAMES, FakeDns
from tests.support.upstream import Upstream

# Subdomains of the allowlisted internal.example; each answers one AAAA record only.
ATTACKS = {
    "nat64.internal.example": "64:ff9b::a9fe:a9fe",
    "nat64-local.internal.example": "64:ff9b:1::a00:1",
    "compatible.internal.example": "::a9fe:a9fe",
    "translated.internal.example": "::ffff:0:a9fe:a9fe",
    "sixtofour.internal.example": "2002:a9fe:a9fe::1",
    "site-local.internal.example": "fec0::1",
}
CONTROL = "example.com"


def probe(out: Path) -> None:
    records = {name: [address] for name, address in ATTACKS.items()}
    records[CONTROL] = ["127.0.0.1"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeDns(records) as dns,
        Upstream(trustme.CA(), list(DEFAULT_NAMES)) as upstream,
    ):
        proxy = start_proxy(Path(tmp), dns, upstream, "rate_limit: false")
        try:
            verify = ssl.create_default_context(cafile=str(proxy.ca_cert))
            answers: dict[str, dict[str, Any]] = {}
            with httpx.Client(proxy=proxy.url, verify=verify, timeout=10) as client:
                for name in [*ATTACKS, CONTROL]:
                    response = client.get(f"https://{name}:{upstream.tls_port}/{name}")
                    answers[name] = {"status": response.status_code, "text": response.text}
                proxy.wait_for_audit(lambda r: r["path"] == f"/{CONTROL}")
            audit = proxy.audit()
        finally:
            exit_code = proxy.stop()
        report = {
            "answers": answers,
            "audit": audit,
            "received": [request.path for request in upstream.received],
            "queries": dns.queries,
            "exit_code": exit_code,
            "stderr": proxy.stderr,
        }
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    probe(Path(sys.argv[1]))
