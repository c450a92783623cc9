"""Special-purpose ranges and IPv6 forms that embed IPv4, as the egress guard judges them."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcage.policy.address_ranges import REFUSED_RANGES, embedded_ipv4, special_range
from agentcage.proxy.egress import AddressGuard

ip = ipaddress.ip_address
net = ipaddress.ip_network

# (address, what the refusal must say), every form the attacker used and every range
# of both IANA special-purpose registries.
REFUSED = [
    # The finding: IPv6 answers that lead to IPv4 internal addresses.
    ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254 (NAT64), a cloud metadata address"),
    ("64:ff9b:1::a00:1", "embeds 10.0.0.1 (local-use NAT64), a private address"),
    ("::a9fe:a9fe", "embeds 169.254.169.254 (IPv4-compatible), a cloud metadata address"),
    ("::ffff:0:a9fe:a9fe", "embeds 169.254.169.254 (IPv4-translated), a cloud metadata"),
    ("2002:a9fe:a9fe::1", "embeds 169.254.169.254 (6to4), a cloud metadata address"),
    ("fec0::1", "is a deprecated site-local address"),
    ("64:ff9b::7f00:1", "embeds 127.0.0.1 (NAT64), a loopback address"),
    ("2002:c0a8:101::", "embeds 192.168.1.1 (6to4), a private address"),
    # Teredo: server 169.254.169.254 in bits 32-63; client 10.0.0.1 inverted at the end.
    ("2001:0:a9fe:a9fe::f5ff:fffe", "embeds 169.254.169.254 (Teredo)"),
    ("2001:0:808:808::f5ff:fffe", "embeds 10.0.0.1 (Teredo), a private address"),
    # IPv4 registry.
    ("0.0.0.0", "the this-host address"),
    ("0.1.2.3", "a this-network address"),
    ("10.1.2.3", "a private address"),
    ("100.64.0.1", "a carrier-grade NAT address"),
    ("100.100.100.200", "a cloud metadata address"),
    ("127.0.0.1", "a loopback address"),
    ("169.254.1.1", "a link-local address"),
    ("169.254.169.254", "a cloud metadata address"),
    ("172.31.255.255", "a private address"),
    ("192.0.0.200", "an IETF protocol assignments address"),
    ("192.0.0.1", "a DS-Lite"),
    ("192.0.0.8", "the IPv4 dummy address"),
    ("192.0.0.9", "a Port Control Protocol anycast address"),
    ("192.0.0.10", "a TURN anycast address"),
    ("192.0.0.170", "a NAT64/DNS64 discovery address"),
    ("192.0.0.171", "a NAT64/DNS64 discovery address"),
    ("192.0.2.1", "a documentation (TEST-NET-1) address"),
    ("192.31.196.1", "an AS112 DNS address"),
    ("192.52.193.1", "an AMT"),
    ("192.88.99.1", "a deprecated 6to4 relay anycast address"),
    ("192.88.99.2", "a 6a44 relay anycast address"),
    ("192.168.1.1", "a private address"),
    ("192.175.48.6", "an AS112 DNS (direct delegation) address"),
    ("198.19.0.1", "a benchmarking address"),
    ("198.51.100.7", "a documentation (TEST-NET-2) address"),
    ("203.0.113.9", "a documentation (TEST-NET-3) address"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.250", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "the limited broadcast address"),
    # IPv6 registry and the rest of the non-unicast space.
    ("::", "the unspecified address"),
    ("::1", "a loopback address"),
    ("100::1", "a discard-only address"),
    ("100:0:0:1::1", "a dummy-prefix address"),
    ("2001:1::1", "a Port Control Protocol anycast address"),
    ("2001:1::2", "a TURN anycast address"),
    ("2001:1::3", "a DNS-SD service registration anycast address"),
    ("2001:2::1", "a benchmarking address"),
    ("2001:3::1", "an AMT"),
    ("2001:4:112::1", "an AS112 DNS address"),
    ("2001:10::1", "a deprecated ORCHID address"),
    ("2001:20::1", "an ORCHIDv2 address"),
    ("2001:30::1", "a drone remote ID (DET) address"),
    ("2001:1ff::1", "an IETF protocol assignments address"),
    ("2001:db8::1", "a documentation address"),
    ("2620:4f:8000::1", "an AS112 DNS (direct delegation) address"),
    ("3fff:fff::1", "a documentation address"),
    ("5f00::1", "a segment routing (SRv6 SID) address"),
    ("fc00::1", "a unique-local (private) address"),
    ("fd00:ec2::254", "a cloud metadata address"),
    ("fe80::1", "a link-local address"),
    ("ff02::1", "a multicast address"),
    ("4000::1", "outside IPv6 global unicast"),
    ("e000::1", "outside IPv6 global unicast"),
    # IPv4-mapped addresses are the IPv4 address itself.
    ("::ffff:127.0.0.1", "127.0.0.1 is a loopback address"),
    ("::ffff:169.254.169.254", "169.254.169.254 is a cloud metadata address"),
]

PUBLIC = ["1.1.1.1", "93.184.216.34", "192.0.1.1", "192.88.98.1", "2606:4700::1111"]


@pytest.mark.parametrize(("address", "says"), REFUSED)
def test_special_addresses_are_refused_and_named(address: str, says: str) -> None:
    reason = AddressGuard().refusal(ip(address))
    assert reason is not None
    assert says in reason
    assert "network.allow_cidrs" in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert AddressGuard().refusal(ip(address)) is None


@pytest.mark.parametrize(("cidr", "label"), REFUSED_RANGES)
def test_every_range_is_refused_from_end_to_end_unless_listed(cidr: str, label: str) -> None:
    network = net(cidr)
    # 0.0.0.0/0 lifts any embedded IPv4's refusal, so only the range itself is judged.
    listed = AddressGuard([network, net("0.0.0.0/0")])
    for address in (network.network_address, network.broadcast_address):
        assert AddressGuard().refusal(address) is not None, address
        assert listed.refusal(address) is None, address
    assert special_range(network.network_address) is not None


def test_most_specific_range_names_the_address() -> None:
    assert special_range(ip("169.254.169.254")) == "a cloud metadata address"
    assert special_range(ip("169.254.169.253")) == "a link-local address"
    assert special_range(ip("2001::1")) == "a Teredo address"
    assert special_range(ip("2001:1::1")) == "a Port Control Protocol anycast address"


def test_reason_lists_every_address_to_allow() -> None:
    reason = AddressGuard().refusal(ip("64:ff9b::a9fe:a9fe"))
    assert reason is not None
    assert "list 169.254.169.254, 64:ff9b::a9fe:a9fe in network.allow_cidrs" in reason


def test_listing_the_translation_prefix_does_not_open_internal_ipv4() -> None:
    nat64 = AddressGuard([net("64:ff9b::/96")])
    assert nat64.refusal(ip("64:ff9b::808:808")) is None  # 8.8.8.8 via the gateway
    reason = nat64.refusal(ip("64:ff9b::a9fe:a9fe"))
    assert reason is not None and "cloud metadata" in reason
    assert "list 169.254.169.254 in" in reason


def test_listing_the_ipv6_address_alone_does_not_open_its_ipv4() -> None:
    exact = AddressGuard([net("64:ff9b::a00:5/128")])
    reason = exact.refusal(ip("64:ff9b::a00:5"))
    assert reason is not None and "embeds 10.0.0.5" in reason


def test_listing_the_ipv4_address_alone_does_not_open_the_prefix() -> None:
    inner = AddressGuard([net("10.0.0.0/8")])
    reason = inner.refusal(ip("64:ff9b::a00:5"))
    assert reason is not None and "is a NAT64 address" in reason
    both = AddressGuard([net("10.0.0.0/8"), net("64:ff9b::/96")])
    assert both.refusal(ip("64:ff9b::a00:5")) is None


def test_teredo_naming_one_ipv4_twice_lists_it_once() -> None:
    # Server 10.0.0.1, client 10.0.0.1 (stored inverted).
    reason = AddressGuard([net("2001::/32")]).refusal(ip("2001:0:a00:1::f5ff:fffe"))
    assert reason is not None and "list 10.0.0.1 in" in reason


def test_teredo_judges_server_and_client() -> None:
    # Server 8.8.8.8, client 1.1.1.1 (stored inverted): both public.
    teredo = ip("2001:0:808:808:0:0:fefe:fefe")
    assert isinstance(teredo, ipaddress.IPv6Address)
    found = [str(v4) for v4, _ in embedded_ipv4(teredo)]
    assert found == ["8.8.8.8", "1.1.1.1"]
    assert AddressGuard([net("2001::/32")]).refusal(teredo) is None


def test_unspecified_and_loopback_are_not_ipv4_compatible() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("::")) == ()
    assert embedded_ipv4(ipaddress.IPv6Address("::1")) == ()
    assert embedded_ipv4(ipaddress.IPv6Address("::2")) != ()


# Property tests. The layouts are written out here, independently of the module's table;
# the other half of a Teredo address is the public 8.8.8.8.
V4 = 0xFFFFFFFF
PUBLIC_V4 = 0x08080808
TEREDO = 0x20010000 << 96
Layout = Callable[[int, int], int]
LAYOUTS: dict[str, tuple[str, Layout]] = {
    "NAT64": ("64:ff9b::/96", lambda v4, _: 0x0064FF9B << 96 | v4),
    "local-use NAT64": ("64:ff9b:1::/48", lambda v4, _: 0x0064FF9B0001 << 80 | v4),
    "IPv4-compatible": ("::/96", lambda v4, _: v4),
    "IPv4-translated": ("::ffff:0:0:0/96", lambda v4, _: 0xFFFF << 48 | v4),
    "6to4": ("2002::/16", lambda v4, low: 0x2002 << 112 | v4 << 80 | low & (2**80 - 1)),
    "Teredo server": (
        "2001::/32",
        lambda v4, low: TEREDO | v4 << 64 | low & V4 << 32 | PUBLIC_V4 ^ V4,
    ),
    "Teredo client": (
        "2001::/32",
        lambda v4, low: TEREDO | PUBLIC_V4 << 64 | low & V4 << 32 | v4 ^ V4,
    ),
}
ipv4s = st.integers(min_value=0, max_value=V4)
noise = st.integers(min_value=0, max_value=2**80 - 1)
layouts = st.sampled_from(sorted(LAYOUTS))


def _embed(layout: str, v4: int, low: int = 0) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(LAYOUTS[layout][1](v4, low))


@given(ipv4s, noise, layouts)
def test_a_refused_ipv4_is_refused_in_every_embedding(v4: int, low: int, layout: str) -> None:
    inner = ipaddress.IPv4Address(v4)
    address = _embed(layout, v4, low)
    inner_refused = AddressGuard().refusal(inner) is not None
    if inner_refused:
        reason = AddressGuard().refusal(address)
        assert reason is not None, address
        if address not in (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")):
            assert f"embeds {inner} " in reason, reason
    # With the translation prefix listed, only the embedded address is left to judge
    # (:: and ::1 are then listed themselves).
    if int(address) > 1:
        listed = AddressGuard([net(LAYOUTS[layout][0])])
        assert (listed.refusal(address) is not None) == inner_refused, address


@given(ipv4s, layouts)
def test_listing_the_ipv4_alone_never_opens_the_embedding(v4: int, layout: str) -> None:
    address = _embed(layout, v4)
    assert AddressGuard([ipaddress.IPv4Network(v4)]).refusal(address) is not None


@given(ipv4s)
def test_a_mapped_address_is_judged_as_its_ipv4(v4: int) -> None:
    inner = ipaddress.IPv4Address(v4)
    mapped = ipaddress.IPv6Address(0xFFFF << 32 | v4)
    for guard in (AddressGuard(), AddressGuard([net("10.0.0.0/8")])):
        assert guard.refusal(mapped) == guard.refusal(inner)


def _inside(prefix: str, bits: int) -> int:
    network = ipaddress.IPv6Network(prefix)
    return int(network.network_address) | bits & int(network.hostmask)


ipv6s = st.one_of(
    st.integers(min_value=0, max_value=2**128 - 1),
    st.builds(
        _inside,
        st.sampled_from([prefix for prefix, _ in LAYOUTS.values()] + ["::ffff:0:0/96"]),
        st.integers(min_value=0, max_value=2**128 - 1),
    ),
)


@given(ipv6s)
def test_any_ipv6_address_is_refused_exactly_when_what_it_embeds_is(value: int) -> None:
    address = ipaddress.IPv6Address(value)
    inside = [v4 for v4, _ in embedded_ipv4(address)]
    if address.ipv4_mapped is not None:
        inside = [address.ipv4_mapped]
    refused_inside = any(AddressGuard().refusal(v4) is not None for v4 in inside)
    every_ipv6 = AddressGuard([net("::/0")])
    assert (every_ipv6.refusal(address) is not None) == refused_inside, address
