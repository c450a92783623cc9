"""Learn mode: the domain list's refusals are observed, every other block still stands."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.audit.record import WOULD_BLOCK, AuditRecord
from agentcage.config import check_config
from agentcage.policy.chain import Chain
from agentcage.policy.inspectors.domain import DomainInspector
from agentcage.policy.types import Finding, Request, Verdict
from tests.unit.policy.helpers import fake, frame, policy, request

# A GitHub token shape built at test time: never a literal credential in the tree.
TOKEN = "ghp_" + fake("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 36)


def learning(**overrides: object) -> dict[str, object]:
    return {"domains": {"allow": ["anthropic.com"], "enforcement": "learn"}, **overrides}


def test_enforce_is_the_default() -> None:
    decision = policy().check_request(request("pypi.org", method="GET"))
    assert decision.verdict is Verdict.BLOCK and not decision.would_block


def test_a_refused_name_is_flagged_would_block() -> None:
    decision = policy(**learning()).check_request(request("pypi.org", method="GET"))
    assert decision.verdict is Verdict.FLAG and decision.would_block
    assert decision.inspector == "domain"
    assert decision.rules == ("not-allowlisted",)
    assert decision.reason.endswith("; let through in learn mode (would block)")


def test_a_listed_name_is_untouched() -> None:
    decision = policy(**learning()).check_request(request("api.anthropic.com", method="GET"))
    assert decision.verdict is Verdict.ALLOW and not decision.would_block


def test_the_blocklist_is_observed_too() -> None:
    domains = {"block": ["pastebin.com"], "enforcement": "learn"}
    decision = policy(domains=domains).check_request(request("pastebin.com", method="GET"))
    assert decision.verdict is Verdict.FLAG and decision.would_block
    assert decision.rules == ("blocklisted",)


@pytest.mark.parametrize("host", ["203.0.113.9", "[2001:db8::1]", "bad host"])
def test_ip_literals_and_invalid_hosts_still_block(host: str) -> None:
    decision = policy(**learning()).check_request(request(host, method="GET"))
    assert decision.verdict is Verdict.BLOCK and decision.inspector == "domain"
    assert not decision.would_block


def test_a_secret_to_a_would_block_host_still_blocks() -> None:
    body = ('{"token": "' + TOKEN + '"}').encode()
    decision = policy(**learning()).check_request(request("pypi.org", body=body))
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "secrets"
    assert "not-allowlisted" in decision.rules  # the observed refusal is kept beside it


def test_a_placeholder_to_a_would_block_host_still_blocks() -> None:
    overrides = learning(secret_injection=[{"env": "KEY", "inject_to": ["anthropic.com"]}])
    req = request("pypi.org", headers={"authorization": "Bearer {{KEY}}"}, method="GET")
    decision = policy({"KEY": "real-value-123456"}, **overrides).check_request(req)
    assert decision.verdict is Verdict.BLOCK and decision.inspector == "secret-injection"


def test_websocket_messages_to_a_would_block_host_are_observed() -> None:
    decision = policy(**learning()).check_frame(frame(b"hello", host="ws.example.net"))
    assert decision.verdict is Verdict.FLAG and decision.would_block


class Impostor:
    """A plugin calling itself `domain` and refusing like the list: never observed."""

    name = "domain"

    def inspect_request(self, request: Request) -> Finding | None:
        return Finding("domain", Verdict.BLOCK, "no", ("not-allowlisted",))


def test_only_the_domain_inspector_itself_is_observed() -> None:
    domains = DomainInspector("allowlist", ["example.com"])
    chain = Chain([domains, Impostor()], observe=domains.list_refusal)
    decision = chain.check_request(request("example.com", method="GET"))
    assert decision.verdict is Verdict.BLOCK and not decision.would_block


def test_a_broken_predicate_enforces() -> None:
    def broken(inspector: object, finding: Finding) -> bool:
        raise RuntimeError("bug")

    chain = Chain([DomainInspector("allowlist", [])], observe=broken)
    assert chain.check_request(request("x.example", method="GET")).verdict is Verdict.BLOCK


def test_the_audit_line_carries_learn_only_when_set() -> None:
    plain = AuditRecord(kind="http", verdict="allow").to_json()
    marked = AuditRecord(kind="dns", verdict="flag", learn=WOULD_BLOCK).to_json()
    assert '"learn"' not in plain
    assert '"learn":"would-block"' in marked


def test_config_validate_warns(tmp_path: Path) -> None:
    path = tmp_path / "cage.yaml"
    path.write_text(
        "name: demo\ncontainer:\n  image: debian:bookworm-slim\n"
        "domains:\n  allow: [pypi.org]\n  enforcement: learn\n"
    )
    config, warnings = check_config(path)
    assert config.domains.learning
    assert [(w.line, w.path) for w in warnings] == [(6, "domains.enforcement")]
    assert "LEARN MODE" in str(warnings[0])
    path.write_text("name: demo\ncontainer:\n  image: debian:bookworm-slim\n")
    config, warnings = check_config(path)
    assert config.domains.enforcement == "enforce" and warnings == []
