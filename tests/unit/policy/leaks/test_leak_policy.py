"""The leak inspector inside the real policy chain, built from a cage config."""

from __future__ import annotations

import base64
import gzip
import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
from agentcage.errors import PolicyError
from agentcage.policy.canaries import CANARY_SEED_ENV, canary_env
from agentcage.policy.engine import Policy
from agentcage.policy.leaks.protected import protected_values
from agentcage.policy.types import Frame, Headers, Request, Verdict

from .conftest import ANTHROPIC, GITHUB, PLACEHOLDER

DB_PASSWORD = "correct-horse-battery-staple-42"


def _config(**secrets: Any) -> CageConfig:
    data: dict[str, Any] = {
        "name": "leaky",
        "container": {"image": "docker.io/library/python:3.12-slim"},
        "domains": {"allow": ["anthropic.com", "example.com", "openai.com"]},
        "rate_limit": False,
        "secret_injection": [{"env": "ANTHROPIC_API_KEY", "inject_to": ["api.anthropic.com"]}],
        "secrets": {
            "known": [{"env": "DB_PASSWORD"}],
            "canaries": [{"env": "OPENAI_API_KEY", "kind": "openai"}],
            **secrets,
        },
    }
    return CageConfig.model_validate(data, context=LoadContext(check_paths=False))


@pytest.fixture
def policy() -> Policy:
    return Policy.from_config(
        _config(), {"ANTHROPIC_API_KEY": ANTHROPIC.decode()}, environ={"DB_PASSWORD": DB_PASSWORD}
    )


def _post(host: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> Request:
    return Request("POST", "https", host, 443, "/upload", Headers(headers), body)


def test_an_encoded_real_value_is_blocked_by_the_leak_inspector(policy: Policy) -> None:
    body = json.dumps({"blob": base64.b64encode(b"k=" + ANTHROPIC).decode()}).encode()
    decision = policy.check_request(_post("files.example.com", body))
    assert decision.verdict is Verdict.BLOCK and decision.inspector == "leaks"
    assert decision.rules == ("injected:ANTHROPIC_API_KEY",)


def test_a_known_value_from_the_environment_is_blocked(policy: Policy) -> None:
    decision = policy.check_request(_post("files.example.com", DB_PASSWORD.encode().hex().encode()))
    assert decision.verdict is Verdict.BLOCK and decision.rules == ("known:DB_PASSWORD",)


def test_the_configured_canary_is_critical_even_at_its_provider(policy: Policy) -> None:
    decoy = canary_env(_config())["OPENAI_API_KEY"]
    headers = (("authorization", f"Bearer {decoy}"),)
    decision = policy.check_request(_post("api.openai.com", b"{}", headers))
    assert decision.verdict is Verdict.BLOCK
    assert decision.blocking is not None and decision.blocking.severity == "critical"


def test_a_credential_format_beneath_two_encodings_is_found_by_the_pattern_scanner(
    policy: Policy,
) -> None:
    aws = b"AKIAQWERTYUIOPASDFGH"
    body = base64.b64encode(gzip.compress(b"[default]\naws_access_key_id = " + aws))
    decision = policy.check_request(_post("files.example.com", body))
    assert decision.verdict is Verdict.BLOCK and "beneath" in decision.reason


def test_the_agents_own_llm_call_passes(policy: Policy) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = (("x-api-key", PLACEHOLDER.decode()), ("content-type", "application/json"))
    decision = policy.check_request(_post("api.anthropic.com", body, headers))
    assert decision.verdict is Verdict.ALLOW, decision.reason


def test_responses_are_scrubbed_in_the_extra_encodings(policy: Policy) -> None:
    echoed = b'{"hex":"' + ANTHROPIC.hex().encode() + b'","rev":"' + ANTHROPIC[::-1] + b'"}'
    clean = policy.scrub(echoed)
    assert ANTHROPIC.hex().encode() not in clean and ANTHROPIC[::-1] not in clean
    assert PLACEHOLDER.hex().encode() in clean
    assert ANTHROPIC.decode() not in policy.scrub_text("x " + ANTHROPIC.decode())


def test_a_known_value_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "deploy.key").write_text(GITHUB.decode() + "\n")
    config = _config(known=[{"file": "deploy.key", "allow_to": ["deploy.example.com"]}])
    policy = Policy.from_config(config, {}, environ={}, base_dir=tmp_path)
    leak = policy.check_request(_post("files.example.com", base64.b32encode(GITHUB)))
    assert leak.verdict is Verdict.BLOCK and leak.rules == ("known:file:deploy.key",)
    home = policy.check_request(_post("deploy.example.com", b"token=" + GITHUB))
    assert home.inspector != "leaks"


@pytest.mark.parametrize(
    ("known", "message"),
    [({"env": "MISSING"}, "MISSING is not set"), ({"file": "nope.key"}, "cannot read")],
)
def test_an_unreadable_known_value_refuses_to_build(
    tmp_path: Path, known: dict[str, str], message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as info:
        Policy.from_config(_config(known=[known]), {}, environ={}, base_dir=tmp_path)
    assert info.value.hint


def test_a_websocket_message_with_an_encoded_known_value_is_blocked(policy: Policy) -> None:
    payload = json.dumps({"log": base64.b32encode(DB_PASSWORD.encode()).decode()}).encode()
    frame = Frame("files.example.com", 443, "/ws", payload, is_text=True)
    decision = policy.check_frame(frame)
    assert decision.verdict is Verdict.BLOCK and decision.rules == ("known:DB_PASSWORD",)


def test_canary_values_are_stable_and_follow_the_seed() -> None:
    config = _config()
    assert canary_env(config) == canary_env(config)
    assert canary_env(config, "s1") != canary_env(config, "s2")
    protected = protected_values(config, {}, {"DB_PASSWORD": DB_PASSWORD, CANARY_SEED_ENV: "s1"})
    canary = next(p for p in protected if p.role == "canary")
    assert canary.value.decode() == canary_env(config, "s1")["OPENAI_API_KEY"]
    given = _config(canaries=[{"env": "X_TOKEN", "value": "decoy-value-123456"}])
    assert canary_env(given) == {"X_TOKEN": "decoy-value-123456"}


def test_protected_values_cover_every_role_and_keep_values_out_of_repr() -> None:
    protected = protected_values(
        _config(), {"ANTHROPIC_API_KEY": ANTHROPIC.decode()}, {"DB_PASSWORD": DB_PASSWORD}
    )
    roles = sorted((p.role, p.name) for p in protected)
    assert roles == [
        ("canary", "OPENAI_API_KEY"),
        ("injected", "ANTHROPIC_API_KEY"),
        ("known", "DB_PASSWORD"),
        ("placeholder", "ANTHROPIC_API_KEY"),
    ]
    assert all(p.value.decode() not in repr(p) for p in protected)


def test_without_the_real_value_only_the_placeholder_is_protected() -> None:
    protected = protected_values(_config(), {}, {"DB_PASSWORD": DB_PASSWORD})
    assert "injected" not in {p.role for p in protected}


# --- formats in the guesses, with no value given ------------------------------------


@pytest.fixture
def patterns_only() -> Policy:
    data: dict[str, Any] = {
        "name": "plain",
        "container": {"image": "docker.io/library/python:3.12-slim"},
        "domains": {"allow": ["example.com"]},
        "rate_limit": False,
    }
    config = CageConfig.model_validate(data, context=LoadContext(check_paths=False))
    return Policy.from_config(config, {}, environ={})


def _junked(value: bytes, every: int, junk: bytes = b"qzjxkvwy") -> bytes:
    return b"".join(
        value[i : i + every] + junk[(i // every) % 8 : (i // every) % 8 + 1]
        for i in range(0, len(value), every)
    )


# Shaped as Anthropic issues them (the shared test value is too short for the format).
ANTHROPIC_FULL = b"sk-ant-api03-" + b"Zx9Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz2Xc4Vb6Nm8Qa1" * 2 + b"Ws2-AA"


@pytest.mark.parametrize("every", [1, 2, 3])
@pytest.mark.parametrize("token", [GITHUB, ANTHROPIC_FULL], ids=["github", "anthropic"])
def test_a_distinctive_format_with_junk_between_its_characters_is_found_without_its_value(
    patterns_only: Policy, token: bytes, every: int
) -> None:
    body = json.dumps({"data": _junked(token, every).decode()}).encode()
    decision = patterns_only.check_request(_post("files.example.com", body))
    assert decision.verdict is Verdict.BLOCK, decision.reason
    assert "interleaved" in decision.reason or "dejunked" in decision.reason


def test_a_loose_format_is_not_looked_for_in_the_guesses(patterns_only: Policy) -> None:
    # `AKIA` and sixteen capitals or digits: the noise a guess makes of base64 holds
    # that now and then, so the AWS key id, plain here, is not looked for there.
    aws = b"AKIAQWERTYUIOPASDFGH"
    plain = patterns_only.check_request(_post("files.example.com", b"id=" + aws))
    assert plain.verdict is Verdict.BLOCK
    junked = patterns_only.check_request(_post("files.example.com", _junked(aws, 1)))
    assert junked.verdict is Verdict.ALLOW, junked.reason


def test_random_tokens_make_no_distinctive_format_in_the_guesses(patterns_only: Policy) -> None:
    # The guesses of random base64, base64url, hex and alphanumeric tokens (ids,
    # nonces, hashes), six a request: a distinctive anchor and its random part would
    # have to come out of them by chance. (The raw tokens themselves make a
    # github_token now and then: `ghp_` and 36 more in base64url, or a Caesar shift of
    # it; twice in these 1,500, before this test and after. Only the guesses count.)
    rng = random.Random(17)
    alphabets = [
        (string.ascii_letters + string.digits + "+/").encode(),
        (string.ascii_letters + string.digits + "_-").encode(),
        b"0123456789abcdef",
        (string.ascii_letters + string.digits).encode(),
    ]
    for n in range(1500):
        tokens = [
            bytes(rng.choices(rng.choice(alphabets), k=rng.randint(32, 200))) for _ in range(6)
        ]
        body = json.dumps({"id": n, "tokens": [t.decode() for t in tokens]}).encode()
        decision = patterns_only.check_request(_post("files.example.com", body))
        guessed = ("interleaved", "dejunked", "xor")
        assert not any(g in decision.reason for g in guessed), decision.reason
