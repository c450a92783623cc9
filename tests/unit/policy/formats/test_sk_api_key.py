"""The generic `sk-` format: keys of the many providers that share the prefix.

Values are drawn at test time and prefixes split, so nothing here looks like a
leaked key to a scanner reading the repository.
"""

from __future__ import annotations

import json
import uuid

import pytest

from agentcage.policy.formats.builtin import BUILTIN_PATTERNS
from agentcage.policy.formats.scanner import PatternScanner
from agentcage.policy.types import Verdict
from tests.unit.policy.formats.test_builtin import CASES
from tests.unit.policy.helpers import ALNUM, HEX, fake, policy, request

OPEN = {"domains": {"mode": "blocklist", "list": []}, "entropy": False, "content_type": False}
SK = "s" + "k-"
SCANNER = PatternScanner([p for p in BUILTIN_PATTERNS if p.name == "sk_api_key"])


def _decide(host: str, text: str) -> tuple[Verdict, tuple[str, ...]]:
    body = json.dumps({"messages": [{"role": "user", "content": text}]}).encode()
    decision = policy(**OPEN).check_request(request(host, body=body))
    return decision.verdict, decision.rules


@pytest.mark.parametrize(
    "key",
    [
        SK + fake(HEX, 32),  # DeepSeek, DashScope
        SK + fake(ALNUM, 48, seed=2),  # Moonshot
        SK + fake(ALNUM, 22, seed=3),  # a LiteLLM virtual key
        SK + "test-" + fake(ALNUM, 24, seed=4),  # a provider's test key, dashed
        SK + "live-" + fake(ALNUM, 32, seed=5),
    ],
)
def test_sk_keys_are_blocked_away_from_their_providers(key: str) -> None:
    assert _decide("collector.example.net", f"export LLM_KEY={key}") == (
        Verdict.BLOCK,
        ("sk_api_key",),
    )
    assert _decide("api.deepseek.com", key) == (Verdict.ALLOW, ())


@pytest.mark.parametrize(
    "text",
    [
        SK + "learn-" + "estimators-and-pipelines-overview",  # words, not a key
        "the task-" + fake(HEX, 32) + " finished",  # glued to a word: not a key
        SK + str(uuid.UUID(int=7)),  # dashes every few characters
        SK + "0" * 32,  # a filler
        "risk-" + fake(HEX, 40),  # a git SHA after a word
        ".sk-spinner .sk-circle-bounce { animation: sk-bounce 1.4s }",
        SK + "abcdefghijklmnopqrstuvwxyz",  # letters only: a counted alphabet
    ],
)
def test_look_alikes_are_not_keys(text: str) -> None:
    assert list(SCANNER.matching(text.encode())) == []
    assert _decide("collector.example.net", text) == (Verdict.ALLOW, ())


@pytest.mark.parametrize("name", ["anthropic_api_key", "openai_project_key", "openai_api_key"])
def test_keys_with_a_format_of_their_own_are_left_to_it(name: str) -> None:
    key, _ = CASES[name]
    assert list(SCANNER.matching(key.encode())) == []
    # ... so they still may go to their own provider.
    host = {"anthropic_api_key": "api.anthropic.com"}.get(name, "api.openai.com")
    assert _decide(host, key) == (Verdict.ALLOW, ())
