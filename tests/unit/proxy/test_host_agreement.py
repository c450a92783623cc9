"""Host agreement: every spelling of the same destination agrees; any other name does not."""

from __future__ import annotations

import pytest

from agentcage.policy.canonical_hosts import canonical_host
from agentcage.proxy.host_agreement import HostMismatch, Target, agree, fold_host, parse_authority

T = Target("api.anthropic.com", 443)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("API.Anthropic.com.", "api.anthropic.com"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_fold_host(raw: str, expected: str) -> None:
    assert fold_host(raw) == expected


@pytest.mark.parametrize(
    ("destination", "claim"),
    [
        (Target("127.0.0.1", 443), "0x7f.1"),
        (Target("127.0.0.1", 443), "2130706433"),
        (Target("xn--bcher-kva.example", 443), "bücher.example"),
    ],
)
def test_agreement_compares_spellings_not_what_the_domain_rules_make_of_them(
    destination: Target, claim: str
) -> None:
    # The domain rules read both as one host; a server reading the Host header may not.
    assert canonical_host(claim) == canonical_host(destination.host)
    with pytest.raises(HostMismatch, match="Host header"):
        agree(scheme="https", destination=destination, sni=None, host_header=claim)


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("example.com", Target("example.com", 443)),
        ("example.com:8443", Target("example.com", 8443)),
        ("[::1]:80", Target("::1", 80)),
        ("[::1]", Target("::1", 443)),
        ("::1", Target("::1", 443)),
    ],
)
def test_parse_authority(authority: str, expected: Target) -> None:
    assert parse_authority(authority, 443) == expected


@pytest.mark.parametrize("authority", ["", "host:", "host:99999", "host:abc", "[::1", "[::1]x"])
def test_parse_authority_rejects(authority: str) -> None:
    with pytest.raises(ValueError):
        parse_authority(authority, 443)


@pytest.mark.parametrize(
    ("sni", "host_header"),
    [
        ("api.anthropic.com", "api.anthropic.com"),
        ("API.anthropic.com.", "api.anthropic.com:443"),
        (None, "Api.Anthropic.Com"),
        ("api.anthropic.com", None),
        (None, None),
    ],
)
def test_agreeing_names(sni: str | None, host_header: str | None) -> None:
    assert agree(scheme="https", destination=T, sni=sni, host_header=host_header) == T


@pytest.mark.parametrize(
    ("sni", "host_header", "fragment"),
    [
        ("attacker.example", "api.anthropic.com", "SNI"),
        ("api.anthropic.com", "attacker.example", "Host header"),
        (None, "api.anthropic.com:8443", "Host header"),
        (None, "api.anthropic.com.evil.example", "Host header"),
        (None, "api.anthropic.com:x", "malformed"),
    ],
)
def test_disagreeing_names(sni: str | None, host_header: str | None, fragment: str) -> None:
    with pytest.raises(HostMismatch, match=fragment):
        agree(scheme="https", destination=T, sni=sni, host_header=host_header)


def test_plain_http_default_port() -> None:
    target = Target("github.com", 80)
    assert agree(scheme="http", destination=target, sni=None, host_header="github.com") == target
    with pytest.raises(HostMismatch):
        agree(scheme="http", destination=target, sni=None, host_header="github.com:8080")


def test_every_host_claim_must_agree() -> None:
    claims = ["api.anthropic.com", "attacker.example"]
    with pytest.raises(HostMismatch, match=r"attacker\.example"):
        agree(scheme="https", destination=T, sni=None, host_header=claims)
    assert agree(scheme="https", destination=T, sni=None, host_header=claims[:1] * 2) == T


def test_a_spelling_is_folded_once() -> None:
    # Every request folds its target, SNI and Host header: the same few names.
    fold_host.cache_clear()
    for _ in range(3):
        assert fold_host("API.Example.COM.") == "api.example.com"
        assert fold_host("[::1]") == "::1"
    assert fold_host.cache_info().misses == 2
