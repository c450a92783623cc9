"""Which addresses the proxy refuses, and the resolver against a loopback fake DNS."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from agentcage.proxy.egress import AddressGuard, ResolveError, Resolver
from tests.support.fake_dns import FakeDns

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "169.254.1.1",
    "224.0.0.1",
    "0.0.0.0",
    "::1",
    "fd00:ec2::254",
    "fc00::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused_by_default(address: str) -> None:
    reason = AddressGuard().refusal(ipaddress.ip_address(address))
    assert reason is not None
    assert "allow_cidrs" in reason


def test_metadata_address_is_named() -> None:
    reason = AddressGuard().refusal(ipaddress.ip_address("169.254.169.254"))
    assert reason is not None and "metadata" in reason


@pytest.mark.parametrize("address", ["1.1.1.1", "93.184.216.34", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert AddressGuard().refusal(ipaddress.ip_address(address)) is None


def test_allow_cidrs_opens_exactly_their_range() -> None:
    guard = AddressGuard([ipaddress.ip_network("10.0.0.0/24")])
    assert guard.refusal(ipaddress.ip_address("10.0.0.9")) is None
    assert guard.refusal(ipaddress.ip_address("10.0.1.9")) is not None


def test_pick_takes_first_permitted_and_explains_refusal() -> None:
    guard = AddressGuard()
    addresses = [ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("8.8.8.8")]
    assert str(guard.pick("x", addresses)) == "8.8.8.8"
    with pytest.raises(ResolveError, match="private"):
        guard.pick("x", addresses[:1])
    with pytest.raises(ResolveError, match="no address"):
        guard.pick("x", [])


def test_resolver_uses_configured_server_and_caches() -> None:
    with FakeDns({"api.example": ["127.0.0.1", "::1"]}) as dns:
        resolver = Resolver([dns.address])

        async def twice() -> tuple[object, object]:
            return await resolver.resolve("api.example"), await resolver.resolve("api.example")

        first, second = asyncio.run(twice())
        assert first == second
        assert {str(a) for a in first} == {"127.0.0.1", "::1"}  # type: ignore[attr-defined]
        assert sorted(dns.queries) == [("api.example", "A"), ("api.example", "AAAA")]


def test_resolver_reports_nxdomain_and_literals() -> None:
    with FakeDns({}) as dns:
        resolver = Resolver([dns.address])
        with pytest.raises(ResolveError, match="NXDOMAIN"):
            asyncio.run(resolver.resolve("nope.example"))
        assert asyncio.run(resolver.resolve("10.0.0.1")) == (ipaddress.ip_address("10.0.0.1"),)


def test_a_name_is_told_from_an_address_once() -> None:
    # Each request's host is looked at; `ipaddress` refusing a name is remembered.
    from agentcage.proxy import egress

    egress._ip_literal.cache_clear()
    with FakeDns({"api.example": ["127.0.0.1"]}) as dns:
        resolver = Resolver([dns.address])

        async def each() -> list[object]:
            hosts = ["api.example", "api.example", "10.0.0.1", "10.0.0.1", "::1"]
            return [await resolver.resolve(host) for host in hosts]

        found = asyncio.run(each())
    assert [[str(a) for a in got] for got in found] == [  # type: ignore[attr-defined]
        ["127.0.0.1"],
        ["127.0.0.1"],
        ["10.0.0.1"],
        ["10.0.0.1"],
        ["::1"],
    ]
    assert egress._ip_literal.cache_info().hits == 2
