"""`agentcage policy replay` on what a real `proxy run` decided."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.proxy.conftest import agent_client, start_proxy
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess, run_cli
from tests.support.upstream import Upstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
AWS_KEY = "AKIAQ4MZVKD7TR3XW5PL"


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("policy", "replay", *args)


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, upstream: Upstream
) -> Iterator[ProxyProcess]:
    proxy = start_proxy(
        tmp_path_factory.mktemp("recorded"), fake_dns, upstream, "rate_limit: false"
    )
    port = upstream.tls_port
    try:
        with agent_client(proxy) as http:
            assert http.get(f"https://api.anthropic.com:{port}/a").status_code == 200
            assert http.get(f"https://github.com:{port}/b").status_code == 200
            assert http.get(f"https://github.com:{port}/c").status_code == 200
            assert http.get(f"https://attacker.example:{port}/x").status_code == 403
            assert (
                http.post(f"https://api.anthropic.com:{port}/flagme", content=b"{}").status_code
                == 200
            )
            leak = http.post(f"https://api.anthropic.com:{port}/up", content=f"key={AWS_KEY}")
            assert leak.status_code == 403
    finally:
        assert proxy.stop() == 0, proxy.stderr
    yield proxy


def test_the_recorded_config_replays_without_a_flip(recorded: ProxyProcess) -> None:
    same = replay("-c", str(recorded.config), "--fail-on-new-blocks", str(recorded.audit_path))
    assert same.returncode == 0, same.stderr
    lines = same.stdout.splitlines()
    assert lines[0].startswith("replayed 6 of ")  # five requests and the leak
    assert lines[-1] == "no decision would change"


def test_a_candidate_shows_what_flips_and_gates_on_new_blocks(
    tmp_path: Path, recorded: ProxyProcess, upstream: Upstream
) -> None:
    candidate = tmp_path / "candidate.yaml"
    port = upstream.tls_port  # the test server's, open like the recorded config's
    candidate.write_text(
        "name: itest\n"
        "container: {image: docker.io/library/python:3.12-slim}\n"
        "domains: {allow: [anthropic.com, attacker.example]}\n"
        f"network: {{ports: [{{host: anthropic.com, port: {port}}}, "
        f"{{host: attacker.example, port: {port}}}]}}\n"
    )
    shown = replay("-c", str(candidate), str(recorded.audit_path))
    assert shown.returncode == 0, shown.stderr
    assert "allow -> block: 2\nblock -> allow: 1\n" in shown.stdout
    assert (
        "\nallow -> block\n       2  GET github.com/b  domain: github.com is not in the domain "
        "allowlist; add it to domains.allow (`agentcage domain add`) if the agent needs it\n"
    ) in shown.stdout
    assert "\nblock -> allow\n       1  GET attacker.example/x  was domain: " in shown.stdout
    # The leak was blocked for its body and /flagme flagged by a plugin: neither is in
    # the log, so the candidate's looser verdicts are not believed.
    assert (
        "kept as recorded (looser under the candidate, but decided on more than the log "
        "holds): secrets: 1, tripwire: 1" in shown.stdout
    )
    gated = replay("-c", str(candidate), "--fail-on-new-blocks", "--json", str(recorded.audit_path))
    assert gated.returncode == 1
    assert gated.stderr == "2 recorded decisions that were let through would be blocked\n"
    result = json.loads(gated.stdout)
    assert result["flips"] == {"allow -> block": 2, "block -> allow": 1}
    assert [(c["host"], c["path"], c["to"]) for c in result["changes"]] == [
        ("github.com", "/b", "block"),
        ("github.com", "/c", "block"),
        ("attacker.example", "/x", "allow"),
    ]


def test_a_broken_candidate_is_a_config_error(tmp_path: Path, recorded: ProxyProcess) -> None:
    candidate = tmp_path / "broken.yaml"
    candidate.write_text("name: itest\ndomains: {allow: [not a domain]}\n")
    shown = replay("-c", str(candidate), str(recorded.audit_path))
    assert shown.returncode == 2
    assert shown.stderr.startswith("error: invalid config")
