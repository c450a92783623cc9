"""Every built-in credential format: a realistic fake value matches, a near miss does not.

Fake values are assembled at test time (prefix split in two, random body) so this
repository never contains anything that looks like a leaked key.
"""

from __future__ import annotations

import json
import re
import string

import pytest

from agentcage.policy.formats.builtin import BUILTIN_PATTERNS
from agentcage.policy.formats.scanner import PatternScanner
from agentcage.policy.types import Verdict
from tests.unit.policy.formats.cases import NEW_CASES
from tests.unit.policy.helpers import ALNUM, HEX, fake, policy, request

URLSAFE = ALNUM + "-_"
UPPER_DIGITS = string.ascii_uppercase + string.digits


# name -> (fake credential, near miss that must not match)
CASES: dict[str, tuple[str, str]] = {
    "aws_access_key_id": (
        "AK" + "IA" + fake("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        "AK" + "IA" + fake("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 15),
    ),
    "aws_secret_access_key": (
        'aws_secret_access_key = "' + fake(ALNUM + "/+", 40) + '"',
        'aws_secret_access_key = "' + fake(ALNUM + "/+", 30) + '"',
    ),
    "github_token": ("gh" + "p_" + fake(ALNUM, 36), "gh" + "x_" + fake(ALNUM, 36)),
    "github_fine_grained_pat": (
        "github" + "_pat_" + fake(ALNUM, 22) + "_" + fake(ALNUM, 59),
        "github" + "_pat_" + fake(ALNUM, 22) + "_" + fake(ALNUM, 20),
    ),
    "anthropic_api_key": (
        "sk-" + "ant-api03-" + fake(URLSAFE, 93) + "AA",
        "sk-" + "ant-api03-" + fake(URLSAFE, 20),
    ),
    "openai_project_key": (
        "sk-" + "proj-" + fake(URLSAFE, 120),
        "sk-" + "proj-" + fake(URLSAFE, 20),
    ),
    "openai_api_key": (
        "sk-" + fake(ALNUM, 20) + "T3Blbk" + "FJ" + fake(ALNUM, 20),
        "sk-" + fake(ALNUM, 20) + "T3Blbk" + "FJ" + fake(ALNUM, 10),
    ),
    "openrouter_api_key": ("sk-" + "or-v1-" + fake(HEX, 64), "sk-" + "or-v1-" + fake(HEX, 63)),
    "slack_token": (
        "xo"
        + "xb-"
        + fake(string.digits, 12)
        + "-"
        + fake(string.digits, 13)
        + "-"
        + fake(ALNUM, 24),
        "xo"
        + "xz-"
        + fake(string.digits, 12)
        + "-"
        + fake(string.digits, 13)
        + "-"
        + fake(ALNUM, 24),
    ),
    "slack_app_token": (
        "xa"
        + "pp-1-"
        + fake(UPPER_DIGITS, 11)
        + "-"
        + fake(string.digits, 13)
        + "-"
        + fake(HEX, 64),
        "xa"
        + "pp-1-"
        + fake(UPPER_DIGITS, 11)
        + "-"
        + fake(string.digits, 13)
        + "-"
        + fake(HEX, 8),
    ),
    "slack_webhook_url": (
        "https://hooks.slack"
        + ".com/services/T"
        + fake(UPPER_DIGITS, 8)
        + "/B"
        + fake(UPPER_DIGITS, 10)
        + "/"
        + fake(ALNUM, 24),
        "https://hooks.slack" + ".com/services/T01",
    ),
    "stripe_secret_key": ("sk" + "_live_" + fake(ALNUM, 24), "sk" + "_test_" + fake(ALNUM, 24)),
    "google_api_key": ("AI" + "za" + fake(URLSAFE, 35), "AI" + "za" + fake(URLSAFE, 30)),
    "google_oauth_token": ("ya" + "29." + fake(URLSAFE, 60), "ya" + "29." + fake(URLSAFE, 10)),
    "gitlab_token": ("gl" + "pat-" + fake(URLSAFE, 20), "gl" + "pat-" + fake(URLSAFE, 10)),
    "npm_token": ("np" + "m_" + fake(ALNUM, 36), "np" + "m_" + fake(ALNUM, 30)),
    "pypi_token": (
        "py" + "pi-AgEIcHlwaS5vcmc" + fake(URLSAFE, 70),
        "py" + "pi-AgEIcHlwaS5vcmc" + fake(URLSAFE, 10),
    ),
    "huggingface_token": (
        "h" + "f_" + fake(string.ascii_letters, 34),
        "h" + "f_" + fake(string.ascii_letters, 33),
    ),
    "twilio_api_key": ("S" + "K" + fake(HEX, 32), "S" + "K" + fake(HEX, 31)),
    "sendgrid_api_key": (
        "S" + "G." + fake(URLSAFE, 22) + "." + fake(URLSAFE, 43),
        "S" + "G." + fake(URLSAFE, 10) + "." + fake(URLSAFE, 43),
    ),
    "mailgun_api_key": ("ke" + "y-" + fake(HEX, 32), "ke" + "y-" + fake(HEX, 31)),
    "databricks_token": ("da" + "pi" + fake(HEX, 32), "da" + "pi" + fake(HEX, 31)),
    "perplexity_api_key": ("pp" + "lx-" + fake(ALNUM, 48), "pp" + "lx-" + fake(ALNUM, 40)),
    "groq_api_key": ("gs" + "k_" + fake(ALNUM, 52), "gs" + "k_" + fake(ALNUM, 40)),
    "xai_api_key": ("xa" + "i-" + fake(ALNUM, 80), "xa" + "i-" + fake(ALNUM, 70)),
    "linear_api_key": ("lin" + "_api_" + fake(ALNUM, 40), "lin" + "_api_" + fake(ALNUM, 39)),
    "telegram_bot_token": (
        fake(string.digits, 10) + ":" + "AA" + fake(URLSAFE, 33),
        fake(string.digits, 10) + ":" + "AB" + fake(URLSAFE, 33),
    ),
    "discord_bot_token": (
        "M" + fake(ALNUM, 23) + "." + fake(ALNUM, 6) + "." + fake(ALNUM, 27),
        "M" + fake(ALNUM, 23) + "." + fake(ALNUM, 5) + "." + fake(ALNUM, 27),
    ),
    "digitalocean_token": ("do" + "p_v1_" + fake(HEX, 64), "do" + "p_v1_" + fake(HEX, 63)),
    "shopify_token": ("shp" + "at_" + fake(HEX, 32), "shp" + "at_" + fake(HEX, 31)),
    "azure_storage_key": (
        "DefaultEndpointsProtocol=https;AccountName=demo;Account"
        + "Key="
        + fake(ALNUM + "+/", 86)
        + "==;EndpointSuffix=core.windows.net",
        "DefaultEndpointsProtocol=https;AccountName=demo;Account"
        + "Key="
        + fake(ALNUM + "+/", 80)
        + "==;EndpointSuffix=core.windows.net",
    ),
    "docker_hub_pat": ("dckr" + "_pat_" + fake(URLSAFE, 27), "dckr" + "_pat_" + fake(URLSAFE, 20)),
    "vault_token": ("hv" + "s." + fake(URLSAFE, 95), "hv" + "s." + fake(URLSAFE, 40)),
    "onepassword_service_token": (
        "ops" + "_eyJ" + fake(ALNUM + "+/", 300),
        "ops" + "_eyJ" + fake(ALNUM + "+/", 50),
    ),
    "sentry_auth_token": ("sntry" + "u_" + fake(HEX, 64), "sntry" + "u_" + fake(HEX, 60)),
    "grafana_token": (
        "gl" + "sa_" + fake(ALNUM, 32) + "_" + fake(HEX, 8),
        "gl" + "sa_" + fake(ALNUM, 32) + "_" + fake(HEX, 7),
    ),
    "tailscale_key": (
        "tskey" + "-auth-" + fake(ALNUM, 12) + "-" + fake(ALNUM, 30),
        "tskey" + "-auth-" + fake(ALNUM, 12),
    ),
    "supabase_token": ("sb" + "p_" + fake(HEX, 40), "sb" + "p_" + fake(HEX, 39)),
    "replicate_api_token": ("r8" + "_" + fake(ALNUM, 37), "r8" + "_" + fake(ALNUM, 30)),
    "age_secret_key": (
        "AGE-SECRET" + "-KEY-1" + fake("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58),
        "AGE-SECRET" + "-KEY-1" + fake("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 50),
    ),
    "postman_api_key": (
        "PM" + "AK-" + fake(HEX, 24) + "-" + fake(HEX, 34),
        "PM" + "AK-" + fake(HEX, 24) + "-" + fake(HEX, 30),
    ),
    "figma_token": ("fig" + "d_" + fake(URLSAFE, 40), "fig" + "d_" + fake(URLSAFE, 30)),
    "notion_token": ("nt" + "n_" + fake(ALNUM, 46), "nt" + "n_" + fake(ALNUM, 30)),
    "square_token": ("sq0" + "atp-" + fake(URLSAFE, 22), "sq0" + "atp-" + fake(URLSAFE, 15)),
    "doppler_token": ("dp" + ".pt." + fake(ALNUM, 43), "dp" + ".pt." + fake(ALNUM, 30)),
    "pulumi_token": ("pu" + "l-" + fake(HEX, 40), "pu" + "l-" + fake(HEX, 39)),
    "new_relic_user_key": (
        "NR" + "AK-" + fake(UPPER_DIGITS, 27),
        "NR" + "AK-" + fake(UPPER_DIGITS, 20),
    ),
    "atlassian_api_token": (
        "ATATT3" + "xFfGF0" + fake(URLSAFE, 180),
        "ATATT3" + "xFfGF0" + fake(URLSAFE, 40),
    ),
}

CASES.update(NEW_CASES)
PATTERNS = {p.name: p for p in BUILTIN_PATTERNS}
# Everything reachable, so only the secrets scanner decides.
OPEN = {"domains": {"mode": "blocklist", "list": []}, "entropy": False, "content_type": False}


def test_every_builtin_pattern_has_a_case() -> None:
    assert len(BUILTIN_PATTERNS) >= 60
    assert set(CASES) == set(PATTERNS)


def test_pattern_names_are_unique() -> None:
    assert len(PATTERNS) == len(BUILTIN_PATTERNS)


# Read only outside a JSON document's strings, where code quoted to an LLM is
# (test_named_values.py sends it as a JSON key and as a form).
_NOT_IN_STRINGS = {"secret_field"}


@pytest.mark.parametrize("name", sorted(set(CASES) - _NOT_IN_STRINGS))
def test_fake_value_is_caught_in_a_body(name: str) -> None:
    value, _ = CASES[name]
    body = json.dumps({"note": "here you go", "data": value}).encode()
    decision = policy(**OPEN).check_request(request("collector.example.net", body=body))
    expected = PATTERNS[name].verdict
    assert decision.verdict is expected
    assert decision.rules == (name,)
    assert decision.inspector == "secrets"
    assert "in body" in decision.reason
    # No piece of the matched value appears in what gets logged.
    for piece in re.findall(r"[A-Za-z0-9]{12,}", value):
        assert piece[:12] not in repr(decision)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_format_alone_finds_the_bare_value(name: str) -> None:
    value, near_miss = CASES[name]
    scanner = PatternScanner([PATTERNS[name]])
    assert [p.name for p in scanner.matching(value.encode())] == [name]
    assert list(scanner.matching(near_miss.encode())) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_near_miss_is_not_reported(name: str) -> None:
    _, near_miss = CASES[name]
    body = json.dumps({"data": near_miss}).encode()
    decision = policy(**OPEN).check_request(request("collector.example.net", body=body))
    assert decision.verdict is Verdict.ALLOW, decision


@pytest.mark.parametrize("name", sorted(n for n, p in PATTERNS.items() if p.hosts))
def test_provider_host_may_receive_its_own_credential(name: str) -> None:
    value, _ = CASES[name]
    host = "api." + PATTERNS[name].hosts[0]
    body = json.dumps({"data": value}).encode()
    assert policy(**OPEN).check_request(request(host, body=body)).verdict is Verdict.ALLOW


@pytest.mark.parametrize("name", ["github_token", "anthropic_api_key", "aws_access_key_id"])
def test_caught_in_a_header_and_in_the_url(name: str) -> None:
    value, _ = CASES[name]
    engine = policy(**OPEN)
    by_header = engine.check_request(
        request("evil.example.net", headers={"Authorization": f"Bearer {value}"})
    )
    assert by_header.verdict is Verdict.BLOCK
    assert "header authorization" in by_header.reason
    by_url = engine.check_request(request("evil.example.net", f"/collect?k={value}"))
    assert by_url.verdict is Verdict.BLOCK
    assert "in url" in by_url.reason


def test_caught_in_a_header_name() -> None:
    value, _ = CASES["github_token"]
    decision = policy(**OPEN).check_request(
        request("evil.example.net", headers={f"x-{value}": "1"})
    )
    assert decision.verdict is Verdict.BLOCK
    assert "header names" in decision.reason


def test_percent_encoded_url_is_decoded_before_scanning() -> None:
    value, _ = CASES["github_token"]
    encoded = "".join(f"%{b:02X}" for b in value.encode())
    decision = policy(**OPEN).check_request(request("evil.example.net", f"/x?q={encoded}"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.rules == ("github_token",)


def test_key_buried_deep_in_a_large_body_is_found() -> None:
    value, _ = CASES["stripe_secret_key"]
    filler = json.dumps({"text": "lorem ipsum dolor sit amet " * 40_000})
    body = (filler[:-2] + " " + value + '"}').encode()
    assert len(body) > 1_000_000
    decision = policy(**OPEN).check_request(request("evil.example.net", body=body))
    assert decision.rules == ("stripe_secret_key",)
