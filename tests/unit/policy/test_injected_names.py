"""`Policy.injected`: which secrets an injection wrote, by name, for the proxy's metrics."""

from __future__ import annotations

from agentcage.policy.types import Headers, Request
from tests.unit.policy.helpers import policy

RULES = [
    {"env": "A_KEY", "inject_to": ["anthropic.com"]},
    {"env": "G_TOKEN", "inject_to": ["github.com"], "places": ["headers", "query"]},
    {"env": "UNUSED", "inject_to": ["anthropic.com"]},
]
VALUES = {"A_KEY": "a-real-value-123456", "G_TOKEN": "g-real-value-654321", "UNUSED": "u-1234567"}


def _request(host: str, path: str = "/", **headers: str) -> Request:
    return Request("GET", "https", host, 443, path, Headers(tuple(headers.items())))


def test_only_the_secrets_written_into_the_request_are_named() -> None:
    engine = policy(VALUES, secret_injection=RULES)
    sent = _request("api.anthropic.com", x_api_key="{{A_KEY}}")
    assert engine.injected(sent, engine.inject(sent)) == ("A_KEY",)
    github = _request("api.github.com", "/?t={{G_TOKEN}}", authorization="Bearer {{G_TOKEN}}")
    assert engine.injected(github, engine.inject(github)) == ("G_TOKEN",)
    elsewhere = _request("example.com", x_api_key="{{A_KEY}}")
    assert engine.injected(elsewhere, engine.inject(elsewhere)) == ()
