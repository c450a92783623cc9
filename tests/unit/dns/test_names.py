from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcage.dns.names import BadDomain, DomainSet, below, checked_domain, fold_qname, zone_of
from agentcage.policy.canonical_hosts import BadHost, canonical_host


@pytest.mark.parametrize(
    "bad",
    ["a/b.com", "a#b.com", "a b.com", "a\nserver=/x/1.2.3.4", "a,b.com", "", "-a.com", "a..com"],
)
def test_checked_domain_refuses_what_could_break_a_directive(bad: str) -> None:
    with pytest.raises(BadDomain):
        checked_domain(bad)


def test_checked_domain_normalizes() -> None:
    assert checked_domain("API.Example.COM.") == "api.example.com"
    assert checked_domain("_acme-challenge.example.com") == "_acme-challenge.example.com"


def test_domain_set_matches_name_and_subdomains_only() -> None:
    domains = DomainSet(["example.com", "api.other.com", "10.0.0.0/8", "192.0.2.1"])
    assert domains.entries() == ["api.other.com", "example.com"]
    assert domains.match("example.com") == "example.com"
    assert domains.match("A.B.Example.com.") == "example.com"
    assert domains.match("notexample.com") is None
    assert domains.match("other.com") is None
    assert domains.match("v1.api.other.com") == "api.other.com"


def test_domain_set_prefers_the_most_specific_entry() -> None:
    domains = DomainSet(["example.com", "deep.example.com"])
    assert domains.match("x.deep.example.com") == "deep.example.com"


@pytest.mark.parametrize(
    ("qname", "entry", "zone"),
    [
        ("data.evil.workers.dev", "workers.dev", "evil.workers.dev"),
        ("a.b.evil.workers.dev", "workers.dev", "evil.workers.dev"),
        ("evil.workers.dev", "workers.dev", "workers.dev"),
        ("workers.dev", "workers.dev", "workers.dev"),
        ("x.y.attacker.example", None, "y.attacker.example"),
        ("attacker.example", None, "attacker.example"),
    ],
)
def test_zone_of(qname: str, entry: str | None, zone: str) -> None:
    assert zone_of(qname, entry) == zone


def test_query_names_fold_case_and_the_root_dot_only() -> None:
    # Not the domain rules' canonical host: a query name is never read as an address,
    # and bytes no hostname has stay visible to the judge.
    assert fold_qname("0x7F.1.") == "0x7f.1" != canonical_host("0x7f.1").name
    assert fold_qname("A\\032B.Example.") == "a\\032b.example"
    with pytest.raises(BadHost):
        canonical_host("a\\032b.example")


def test_below() -> None:
    assert below("a.b.x.com", "x.com") == "a.b"
    assert below("x.com", "x.com") == ""


@given(st.text(max_size=80))
def test_whatever_passes_checked_domain_is_safe_in_a_directive(text: str) -> None:
    try:
        name = checked_domain(text)
    except BadDomain:
        return
    assert name and not any(ch in name for ch in "/#,= \t\r\n\x00")
    assert all(ch.isascii() for ch in name)


@pytest.mark.parametrize("bad", ["a\n.b.com", "a\r\n.b.com", "x.a\n.com"])
def test_a_newline_at_the_end_of_a_label_is_refused(bad: str) -> None:
    with pytest.raises(BadDomain):
        checked_domain(bad)


def test_the_sidecar_knows_the_name_its_health_check_asks_for() -> None:
    import inspect

    from agentcage.cage import layout, probe
    from agentcage.dns.sidecar import HEALTH_PROBE_NAME

    assert inspect.signature(probe.dns_ready).parameters["name"].default == HEALTH_PROBE_NAME
    assert HEALTH_PROBE_NAME in layout.SELF_TEST_NAMES
