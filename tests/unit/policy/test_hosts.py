from __future__ import annotations

import pytest

from agentcage.policy.canonical_hosts import BadHost, HostSet, canonical_host, domain_matches


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.65535", "10.1.255.255"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("169.254.169.254.", "169.254.169.254"),
    ],
)
def test_every_ipv4_spelling_is_an_address(raw: str, expected: str) -> None:
    host = canonical_host(raw)
    assert host.is_ip
    assert host.name == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("API.Example.COM.", "api.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("example\u3002com", "example.com"),  # ideographic full stop
        ("1password.com", "1password.com"),
        ("123abc.example", "123abc.example"),
    ],
)
def test_names_are_canonical(raw: str, expected: str) -> None:
    host = canonical_host(raw)
    assert not host.is_ip
    assert host.name == expected


@pytest.mark.parametrize(
    "raw",
    [
        "1.2.3.999999",
        "256.1.1.1",
        "1.2.3.4.5",
        "0x1g.1",
        "08.1.1.1",
        "a..b",
        "",
        "x/y",
        "[::zz]",
        "*.example.com",
        "a b.com",
    ],
)
def test_malformed_hosts_are_rejected(raw: str) -> None:
    with pytest.raises(BadHost):
        canonical_host(raw)


def test_numeric_last_label_is_never_a_name() -> None:
    # WHATWG URL rule: a numeric last label means an IPv4 address, or an error.
    with pytest.raises(BadHost):
        canonical_host("evil.1")


def test_domain_matches_itself_and_subdomains_only() -> None:
    assert domain_matches("example.com", "example.com")
    assert domain_matches("a.b.example.com", "example.com")
    assert not domain_matches("notexample.com", "example.com")
    assert not domain_matches("example.com.evil.net", "example.com")


def test_host_set_domains_networks_and_mapped_addresses() -> None:
    hosts = HostSet(["example.com", "10.0.0.0/8", "192.0.2.7"])
    assert canonical_host("api.example.com") in hosts
    assert canonical_host("notexample.com") not in hosts
    assert canonical_host("10.9.8.7") in hosts
    assert canonical_host("0xa.1") in hosts  # 10.0.0.1
    assert canonical_host("::ffff:10.1.2.3") in hosts
    assert canonical_host("192.0.2.7") in hosts
    assert canonical_host("192.0.2.8") not in hosts
    assert hosts.remove("example.com")
    assert not hosts.remove("example.com")
    assert canonical_host("api.example.com") not in hosts
    hosts.add("2001:db8::/32")
    assert canonical_host("[2001:db8::1]") in hosts
