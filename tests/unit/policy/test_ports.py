"""Port rules: 80 and 443 for every host; others only for the hosts network.ports names."""

from __future__ import annotations

import dataclasses

import pytest

from agentcage.policy.inspectors.ports import PortInspector
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import config, policy, request

PORTS = {
    "ports": [
        {"host": "git.example.com", "port": 8443},
        {"host": "legacy.example.com", "port": 8080, "protocol": "http"},
        {"host": "10.1.2.0/24", "port": 9000, "protocol": "http"},
        {"host": "db.example.com", "port": 5432, "protocol": "opaque"},
    ]
}
RULES = PortInspector(config(network=PORTS))


@pytest.mark.parametrize(
    ("host", "port", "scheme"),
    [
        ("anything.example", 443, "https"),
        ("anything.example", 80, "http"),
        ("git.example.com", 8443, "https"),
        ("api.git.example.com", 8443, "wss"),
        ("legacy.example.com", 8080, "http"),
        ("10.1.2.7", 9000, "http"),
    ],
)
def test_open(host: str, port: int, scheme: str) -> None:
    assert RULES.refusal(host, port, scheme) is None


@pytest.mark.parametrize(
    ("host", "port", "scheme", "reason"),
    [
        ("git.example.com", 22, "https", "port 22 is not open: only 80 and 443 are"),
        ("example.com", 8443, "https", "port 8443 is not open for example.com"),
        ("notgit.example.com", 8443, "https", "not open for notgit.example.com"),
        ("git.example.com", 8443, "http", "listed as https, but this request is http"),
        ("legacy.example.com", 8080, "https", "listed as http, but this request is https"),
        ("db.example.com", 5432, "https", "is an opaque port"),
        ("10.1.3.7", 9000, "http", "not open for 10.1.3.7"),
    ],
)
def test_refused(host: str, port: int, scheme: str, reason: str) -> None:
    found = RULES.refusal(host, port, scheme)
    assert found is not None and reason in found


def test_the_chain_refuses_another_port_by_default() -> None:
    on_443 = request("api.anthropic.com")
    assert policy().check_request(on_443).verdict is Verdict.ALLOW
    decision = policy().check_request(dataclasses.replace(on_443, port=8443))
    assert (decision.verdict, decision.inspector) == (Verdict.BLOCK, "port")
