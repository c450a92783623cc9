"""Which addresses the proxy may connect to, and how it finds them.

The proxy resolves upstream names itself (through the cage's `dns_servers`),
refuses internal addresses unless `network.allow_cidrs` lists them, and then
connects to exactly the address it vetted, so a second lookup cannot swap in
another answer between check and connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from agentcage.config.schema import parse_server
from agentcage.proxy.address_ranges import embedded_ipv4, special_range

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_TTL = 300.0
NEGATIVE_TTL = 5.0


class ResolveError(Exception):
    """A name has no usable address."""


class AddressGuard:
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

    def __init__(self, allow_cidrs: Iterable[IPNetwork] = ()) -> None:
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

    def pick(self, host: str, addresses: Sequence[IPAddress]) -> IPAddress:
        """The first permitted address; ResolveError naming the refusal otherwise."""
        reasons = []
        for address in addresses:
            reason = self.refusal(address)
            if reason is None:
                return address
            reasons.append(reason)
        if not reasons:
            raise ResolveError(f"{host} has no address")
        raise ResolveError(f"{host} resolves only to refused addresses: {reasons[0]}")


@dataclass
class _Entry:
    addresses: tuple[IPAddress, ...]
    error: str | None
    expires: float


class Resolver:
    """A/AAAA lookups through the configured servers, cached by TTL (capped)."""

    def __init__(self, servers: Sequence[str] | None, *, timeout: float = 3.0) -> None:
        if servers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_server(server)) for server in servers
            ]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        resolver.cache = None
        self._resolver = resolver
        self._cache: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[_Entry]] = {}

    async def resolve(self, host: str) -> tuple[IPAddress, ...]:
        try:
            return (ipaddress.ip_address(host),)
        except ValueError:
            pass
        entry = self._cache.get(host)
        if entry is None or entry.expires < time.monotonic():
            entry = await self._lookup_once(host)
        if entry.error:
            raise ResolveError(entry.error)
        return entry.addresses

    async def _lookup_once(self, host: str) -> _Entry:
        # Concurrent requests for one name share a single lookup.
        pending = self._pending.get(host)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._pending[host] = future
        try:
            entry = await self._lookup(host)
            self._cache[host] = entry
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            del self._pending[host]

    async def _lookup(self, host: str) -> _Entry:
        results = await asyncio.gather(
            self._query(host, "A"), self._query(host, "AAAA"), return_exceptions=True
        )
        addresses: list[IPAddress] = []
        ttl = MAX_TTL
        errors: list[str] = []
        for result in results:
            if isinstance(result, BaseException):
                errors.append(_describe(host, result))
                continue
            found, found_ttl = result
            addresses.extend(found)
            if found:
                ttl = min(ttl, found_ttl)
        now = time.monotonic()
        if addresses:
            return _Entry(tuple(addresses), None, now + ttl)
        return _Entry((), errors[0] if errors else f"{host} has no address", now + NEGATIVE_TTL)

    async def _query(self, host: str, rdtype: str) -> tuple[list[IPAddress], float]:
        try:
            answer = await self._resolver.resolve(host, rdtype)
        except dns.resolver.NoAnswer:
            return [], MAX_TTL
        assert answer.rrset is not None
        found = [ipaddress.ip_address(record.address) for record in answer]
        return found, float(answer.rrset.ttl)


def _describe(host: str, exc: BaseException) -> str:
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return f"{host} does not exist (NXDOMAIN)"
    if isinstance(exc, dns.exception.Timeout):
        return f"looking up {host} timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return f"no DNS server answered for {host}"
    return f"looking up {host} failed: {type(exc).__name__}: {exc}"
