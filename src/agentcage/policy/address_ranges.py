"""What an IP address means: the special-purpose range it lies in, and any IPv4 inside it.

The table follows the IANA IPv4 and IPv6 Special-Purpose Address Registries (as of
2025), plus the ranges those registries leave out but a proxy must not reach:
multicast, cloud metadata services, deprecated site-local space and IPv6 space
outside global unicast. Every entry is refused unless `network.allow_cidrs` covers
it, including the ones IANA marks globally reachable (AS112, AMT, NAT64, ...): none
of them is a web service an agent needs, and each is a way to reach something else.

Several IPv6 forms carry an IPv4 address, and a host with the matching translator
(a NAT64 gateway, a 6to4 or Teredo relay, a stack that still honours
IPv4-compatible addresses) delivers the connection to that IPv4 address. Those are
judged by what they embed as well as by themselves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Each label is a noun phrase, so a message reads "<address> is <label>".
REFUSED_RANGES: tuple[tuple[str, str], ...] = (
    # IPv4
    ("0.0.0.0/8", "a this-network address"),
    ("0.0.0.0/32", "the this-host address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("100.100.100.200/32", "a cloud metadata address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("169.254.169.254/32", "a cloud metadata address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignments address"),
    ("192.0.0.0/29", "a DS-Lite (IPv4 service continuity) address"),
    ("192.0.0.8/32", "the IPv4 dummy address"),
    ("192.0.0.9/32", "a Port Control Protocol anycast address"),
    ("192.0.0.10/32", "a TURN anycast address"),
    ("192.0.0.170/31", "a NAT64/DNS64 discovery address"),
    ("192.0.2.0/24", "a documentation (TEST-NET-1) address"),
    ("192.31.196.0/24", "an AS112 DNS address"),
    ("192.52.193.0/24", "an AMT (multicast tunnelling) address"),
    ("192.88.99.0/24", "a deprecated 6to4 relay anycast address"),
    ("192.88.99.2/32", "a 6a44 relay anycast address"),
    ("192.168.0.0/16", "a private address"),
    ("192.175.48.0/24", "an AS112 DNS (direct delegation) address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation (TEST-NET-2) address"),
    ("203.0.113.0/24", "a documentation (TEST-NET-3) address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("255.255.255.255/32", "the limited broadcast address"),
    # IPv6
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "a deprecated IPv4-compatible address"),
    ("::ffff:0:0/96", "an IPv4-mapped address"),
    ("::ffff:0:0:0/96", "an IPv4-translated address"),
    ("64:ff9b::/96", "a NAT64 address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("100:0:0:1::/64", "a dummy-prefix address"),
    ("2001::/23", "an IETF protocol assignments address"),
    ("2001::/32", "a Teredo address"),
    ("2001:1::1/128", "a Port Control Protocol anycast address"),
    ("2001:1::2/128", "a TURN anycast address"),
    ("2001:1::3/128", "a DNS-SD service registration anycast address"),
    ("2001:2::/48", "a benchmarking address"),
    ("2001:3::/32", "an AMT (multicast tunnelling) address"),
    ("2001:4:112::/48", "an AS112 DNS address"),
    ("2001:10::/28", "a deprecated ORCHID address"),
    ("2001:20::/28", "an ORCHIDv2 address"),
    ("2001:30::/28", "a drone remote ID (DET) address"),
    ("2001:db8::/32", "a documentation address"),
    ("2002::/16", "a 6to4 address"),
    ("2620:4f:8000::/48", "an AS112 DNS (direct delegation) address"),
    ("3fff::/20", "a documentation address"),
    ("5f00::/16", "a segment routing (SRv6 SID) address"),
    ("fc00::/7", "a unique-local (private) address"),
    ("fd00:ec2::254/128", "a cloud metadata address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a deprecated site-local address"),
    ("ff00::/8", "a multicast address"),
    # IANA assigns unicast space only from 2000::/3; the rest is reserved.
    ("::/3", "an address outside IPv6 global unicast (2000::/3)"),
    ("4000::/2", "an address outside IPv6 global unicast (2000::/3)"),
    ("8000::/1", "an address outside IPv6 global unicast (2000::/3)"),
)


@dataclass(frozen=True, slots=True)
class _Range:
    version: int
    network: int
    mask: int
    label: str


def _compile(cidr: str, label: str) -> _Range:
    net = ipaddress.ip_network(cidr)
    return _Range(net.version, int(net.network_address), int(net.netmask), label)


# Most specific first, so 169.254.169.254 is named a metadata address, not link-local.
_RANGES = tuple(
    sorted(
        (_compile(cidr, label) for cidr, label in REFUSED_RANGES),
        key=lambda r: -bin(r.mask).count("1"),
    )
)


def special_range(address: IPAddress) -> str | None:
    """The label of the most specific special-purpose range holding `address`, if any."""
    value = int(address)
    for entry in _RANGES:
        if entry.version == address.version and value & entry.mask == entry.network:
            return entry.label
    return None


_V4 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Embedding:
    """An IPv6 form carrying IPv4 addresses: each at `shift` bits from the right, XOR `flip`."""

    prefix: ipaddress.IPv6Network
    form: str
    fields: tuple[tuple[int, int], ...]


EMBEDDINGS: tuple[Embedding, ...] = (
    # RFC 6052: the well-known prefix is always a /96, the IPv4 address in the last 32 bits.
    Embedding(ipaddress.IPv6Network("64:ff9b::/96"), "NAT64", ((0, 0),)),
    # RFC 8215: operators carve their own NAT64 prefix out of this /48, and RFC 6052 puts
    # the IPv4 address elsewhere for prefixes shorter than /96. The /96 layout is read
    # here; the whole /48 is refused on its own unless allow_cidrs lists it, so an
    # operator using a shorter prefix has chosen to open it.
    Embedding(ipaddress.IPv6Network("64:ff9b:1::/48"), "local-use NAT64", ((0, 0),)),
    # RFC 4291 2.5.5.1, deprecated but still routed to IPv4 by some stacks.
    Embedding(ipaddress.IPv6Network("::/96"), "IPv4-compatible", ((0, 0),)),
    # RFC 2765 (SIIT).
    Embedding(ipaddress.IPv6Network("::ffff:0:0:0/96"), "IPv4-translated", ((0, 0),)),
    # RFC 3056: 2002:VVVV:VVVV::/48.
    Embedding(ipaddress.IPv6Network("2002::/16"), "6to4", ((80, 0),)),
    # RFC 4380: the server in bits 32-63, the client's address inverted in the last 32.
    Embedding(ipaddress.IPv6Network("2001::/32"), "Teredo", ((64, 0), (0, _V4))),
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[tuple[ipaddress.IPv4Address, str], ...]:
    """The IPv4 addresses `address` leads to through a translator, with the form's name.

    IPv4-mapped addresses are not listed: they are no IPv6 destination at all, and the
    caller judges them as the IPv4 address they are.
    """
    value = int(address)
    if value <= 1:
        # :: and ::1 lie in ::/96 but are the unspecified and loopback addresses.
        return ()
    for embedding in EMBEDDINGS:
        if address in embedding.prefix:
            return tuple(
                (ipaddress.IPv4Address(((value >> shift) & _V4) ^ flip), embedding.form)
                for shift, flip in embedding.fields
            )
    return ()


class AddressRules:
    """Refuses special-purpose addresses unless an allowed CIDR covers them.

    An address is judged as every address it stands for: itself, and each IPv4
    address it embeds (NAT64, 6to4, Teredo, ...). It is refused if any of them is
    refused, and an allow_cidrs entry lifts only the refusal of an address it covers.
    So `64:ff9b::/96` in allow_cidrs lets a NAT64-only host reach public IPv4, but not
    64:ff9b::a9fe:a9fe: its embedded 169.254.169.254 needs an entry of its own. An
    entry naming only the IPv6 address (even a /128) never opens the IPv4 address
    behind it, because the translator, not the proxy, decides where that goes; and an
    entry for the IPv4 address does not open the translation prefix, which is the
    user's statement that a translator may be used at all.
    """

    def __init__(
        self, allow_cidrs: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
    ) -> None:
        self._allow = tuple(allow_cidrs)

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be connected to, or None when it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # Not an IPv6 destination at all: the kernel connects to the IPv4 address.
            address = address.ipv4_mapped
        reasons: list[tuple[IPAddress, str]] = []
        if isinstance(address, ipaddress.IPv6Address):
            # The embedded address comes first: it is where the connection would end.
            for inner, form in embedded_ipv4(address):
                label = self._judge(inner)
                if label is not None:
                    reasons.append((inner, f"{address} embeds {inner} ({form}), {label}"))
        label = self._judge(address)
        if label is not None:
            reasons.append((address, f"{address} is {label}"))
        if not reasons:
            return None
        if len(reasons) == 1 and reasons[0][0] is address:
            fix = "list it"
        else:
            # dict.fromkeys: a Teredo address may name one IPv4 address twice.
            fix = "list " + ", ".join(dict.fromkeys(str(refused) for refused, _ in reasons))
        return f"{reasons[0][1]}; {fix} in network.allow_cidrs to let the cage reach it"

    def _judge(self, address: IPAddress) -> str | None:
        if any(address in net for net in self._allow if net.version == address.version):
            return None
        label = special_range(address)
        if label is None and not address.is_global:
            # The table is meant to be complete; this catches what it may miss.
            label = "not a public address"
        return label
