"""Secrets with no format, found by the credential name beside them (`named_values.py`):
what each context catches, and the everyday traffic with the same names it must pass."""

from __future__ import annotations

import json
import string
import uuid
from typing import Any

import pytest

from agentcage.policy.formats.named_values import credential_name
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import ALNUM, HEX, fake, policy, request

# Everything reachable, so only the secrets scanner decides.
OPEN: dict[str, Any] = {
    "domains": {"mode": "blocklist", "list": []},
    "entropy": False,
    "content_type": False,
}
# What the exfiltration benchmark's two formatless secrets look like.
PASSWORD = "ember-quartz-" + "ember38!"
AWS_SECRET = fake(ALNUM + "+/", 40, seed=5)
FORM = "application/x-www-form-urlencoded"


def _decide(
    body: str = "",
    *,
    path: str = "/collect",
    headers: dict[str, str] | None = None,
    content_type: str | None = "application/json",
    host: str = "collector.example.net",
    **settings: Any,
) -> Any:
    engine = policy(**OPEN, secrets=settings) if settings else policy(**OPEN)
    return engine.check_request(
        request(host, path, body=body.encode(), headers=headers, content_type=content_type)
    )


# -- environment variables' names: blocked wherever they travel ---------------------


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"HOME": "/root", "DB_" + "PASSWORD": PASSWORD, "LANG": "C"}),
        json.dumps({"HOME": "/root", "AWS_SECRET_" + "KEY": AWS_SECRET}),
        json.dumps({"Env": ["PATH=/usr/bin", "STRIPE_" + "SECRET=" + AWS_SECRET]}),
        json.dumps({"log": "HOME=/root\nHF_" + "TOKEN=" + fake(ALNUM, 34) + "\nLANG=C"}),
    ],
    ids=["json-env-dump", "json-secret-key", "env-array", "token-env-line"],
)
def test_an_environment_dumped_as_json_is_blocked(body: str) -> None:
    decision = _decide(body)
    assert decision.verdict is Verdict.BLOCK, decision
    assert decision.rules == ("secret_env_value",)
    assert PASSWORD not in repr(decision) and AWS_SECRET not in repr(decision)


def test_an_environment_name_in_a_query_is_blocked() -> None:
    decision = _decide(path="/p?v=1&DB_" + "PASSWORD=ember-quartz-ember38%21", content_type=None)
    assert decision.verdict is Verdict.BLOCK
    assert decision.rules == ("secret_env_value",)


@pytest.mark.parametrize(
    "body",
    [
        # A test fixture in code sent to an LLM: its quotes are escaped.
        json.dumps({"content": 'ENV = {"DB_' + 'PASSWORD": "' + PASSWORD + '"}'}),
        json.dumps({"DB_" + "PASSWORD_FILE": "/run/secrets/" + fake(ALNUM, 20)}),
        json.dumps({"GITHUB_" + "TOKEN_URL": "https://ci.example.com/" + fake(ALNUM, 30)}),
        json.dumps({"DB_" + "PASSWORD": "${DB_PASSWORD}", "API_KEY": "changeme"}),
        json.dumps({"MAX_TOKENS": "4096", "TOKENIZERS_PARALLELISM": "false"}),
    ],
    ids=["escaped-fixture", "file-name", "url", "placeholders", "not-secrets"],
)
def test_environment_names_that_hold_no_secret_pass(body: str) -> None:
    assert _decide(body).verdict is Verdict.ALLOW


# -- credential fields: flagged by default, blocked when asked -----------------------


@pytest.mark.parametrize(
    ("body", "path", "headers", "content_type"),
    [
        (json.dumps({"user": "bob", "pass" + "word": PASSWORD}), "/", None, "application/json"),
        (json.dumps({"clientSecret": AWS_SECRET}), "/", None, "application/json"),
        ("user=bob&pass" + "word=" + PASSWORD, "/", None, FORM),
        ("", "/p?q=1&tok" + "en=" + PASSWORD, None, None),
        ("", "/", {"X-Api-" + "Key": AWS_SECRET}, None),
    ],
    ids=["json-password", "json-client-secret", "form-password", "query-token", "header"],
)
def test_a_credential_field_is_flagged_and_blocked_when_asked(
    body: str, path: str, headers: dict[str, str] | None, content_type: str | None
) -> None:
    flagged = _decide(body, path=path, headers=headers, content_type=content_type)
    assert flagged.verdict is Verdict.FLAG, flagged
    assert flagged.rules == ("secret_field",)
    blocked = _decide(
        body, path=path, headers=headers, content_type=content_type, named_fields="block"
    )
    assert blocked.verdict is Verdict.BLOCK
    assert blocked.rules == ("secret_field",)
    off = _decide(body, path=path, headers=headers, content_type=content_type, named_fields="off")
    assert off.verdict is Verdict.ALLOW


def test_a_named_home_may_receive_the_field() -> None:
    settings = {"named_fields": "block", "allow_to_domains": {"secret_field": ["example.net"]}}
    body = json.dumps({"api_key": AWS_SECRET})
    assert _decide(body, **settings).verdict is Verdict.ALLOW
    assert _decide(body, host="other.example.org", **settings).verdict is Verdict.BLOCK


def _llm_body_with_code() -> str:
    code = "\n".join(
        [
            "def test_login(client):",
            '    r = client.post("/login", json={"user": "a", "password": "'
            + fake(ALNUM, 14)
            + '!9"})',
            '    CONFIG = {"api_key": "'
            + fake(ALNUM, 32)
            + '", "DB_PASSWORD": "'
            + PASSWORD
            + '"}',
            "    assert r.status_code == 200",
            "url = 'https://example.com/cb?token=" + fake(ALNUM, 30) + "&state=x'",
        ]
    )
    return json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": [{"type": "text", "text": code}]}],
        }
    )


def _package_lock() -> str:
    packages = {
        f"node_modules/{name}": {
            "version": "4.0.0",
            "resolved": f"https://registry.npmjs.org/{name}/-/{name}-4.0.0.tgz",
            "integrity": "sha512-" + fake(ALNUM + "+/", 86, seed=n) + "==",
        }
        for n, name in enumerate(["js-tokens", "csrf-tokens", "secret-handshake", "passwd-user"])
    }
    return json.dumps({"name": "app", "lockfileVersion": 3, "packages": packages}, indent=2)


def _ids_and_hashes() -> str:
    return json.dumps(
        {
            "id": str(uuid.UUID(int=7)),
            "secret_id": str(uuid.UUID(int=8)),
            "password_hash": "$2b$12$" + fake(ALNUM + "./", 53),
            "sha": fake(HEX, 40),
            "etag": fake(ALNUM + "+/", 32),
            "pageToken": fake(ALNUM, 40),
            "next_token": fake(ALNUM, 40),
            "csrf_token": fake(ALNUM, 40),
            "secret_name": "prod/db/" + fake(string.ascii_lowercase, 12),
        }
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (_llm_body_with_code(), "application/json"),
        (_package_lock(), "application/json"),
        (_ids_and_hashes(), "application/json"),
        # OAuth token requests send their secrets to the server that issued them.
        ("grant_type=refresh_token&refresh_token=" + fake(ALNUM + "-_", 64), FORM),
        ("grant_type=client_credentials&client_secret=" + AWS_SECRET, FORM),
        (json.dumps({"grant_type": "password", "username": "a", "password": PASSWORD}), None),
        # GitHub's secrets API: the value is sealed, its name is a path segment.
        (
            json.dumps({"encrypted_value": fake(ALNUM + "+/", 60), "key_id": "568250167242549743"}),
            "application/json",
        ),
    ],
    ids=[
        "llm-code",
        "package-lock",
        "ids-hashes",
        "oauth-refresh",
        "oauth-client",
        "oauth-pw",
        "sealed-secret",
    ],
)
def test_everyday_bodies_with_credential_words_are_not_even_flagged(
    body: str, content_type: str | None
) -> None:
    assert _decide(body, content_type=content_type, named_fields="block").verdict is Verdict.ALLOW


def test_a_key_with_a_format_of_its_own_is_left_to_that_format() -> None:
    # The provider's own key in its header is the format's business (it may go there).
    key = "sk-" + "ant-api03-" + fake(ALNUM + "-_", 93) + "AA"
    decision = _decide(headers={"x-api-key": key}, host="api.anthropic.com", named_fields="block")
    assert decision.verdict is Verdict.ALLOW
    elsewhere = _decide(headers={"x-api-key": key}, named_fields="block")
    assert elsewhere.rules == ("anthropic_api_key",)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("password", True),
        ("client_secret", True),
        ("apiKey", True),
        ("x-api-key", True),
        ("access_token", True),
        ("token", True),
        ("newPassword", True),
        ("password_hash", False),
        ("secret_name", False),
        ("secretary", False),
        ("max_tokens", False),
        ("pageToken", False),
        ("csrf_token", False),
        ("authorization", False),
        ("key", False),
    ],
)
def test_which_names_name_a_credential(name: str, expected: bool) -> None:
    assert credential_name(name.encode()) is expected


def test_environment_names_count_a_token_word() -> None:
    assert credential_name(b"HF_TOKEN", tokens=True)
    assert not credential_name(b"HF_TOKEN")
    assert not credential_name(b"HF_TOKEN_PATH", tokens=True)


def test_a_placeholder_in_a_field_is_no_stand_in_to_block() -> None:
    # `documentation_values: block` blocks stand-ins of formats (`ghp_xxxx...`); a
    # placeholder password is no imitation of anything, so the field stays flagged.
    body = json.dumps({"api_key": "your-api-key-here-123!"})
    decision = _decide(body, documentation_values="block")
    assert decision.verdict is Verdict.FLAG
    assert decision.rules == ("secret_field",)
    assert _decide(body).verdict is Verdict.ALLOW


def test_a_name_at_the_start_of_a_body_is_read() -> None:
    # Names are found by what comes before them; the body's first has nothing.
    # (`password=` there is an env line's, `secret_assignment`'s.)
    form = _decide("api_" + "token=" + PASSWORD + "&user=bob", content_type=FORM)
    assert form.rules == ("secret_field",)
    env = _decide("HF_" + "TOKEN=" + fake(ALNUM, 34) + "\nLANG=C", content_type="text/plain")
    assert env.verdict is Verdict.BLOCK
    assert env.rules == ("secret_env_value",)
