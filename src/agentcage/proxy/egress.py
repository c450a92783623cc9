"""Which addresses the proxy may connect to, and how it finds them.

The proxy resolves upstream names itself (through the cage's `dns_servers`),
refuses internal addresses unless `network.allow_cidrs` lists them, and then
connects to exactly the address it vetted, so a second lookup cannot swap in
another answer between check and connect.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentcage.config.host import parse_server
from agentcage.errors import ConfigError
from agentcage.policy.address_ranges import AddressRules

if TYPE_CHECKING:
    import asyncio

    import dns.asyncresolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_TTL = 300.0
NEGATIVE_TTL = 5.0


class ResolveError(Exception):
    """A name has no usable address."""


class AddressGuard(AddressRules):
    """`AddressRules` for the proxy's connections: picks the address to connect to."""

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
    """A/AAAA lookups through the configured servers, cached by TTL (capped).

    The servers' addresses are checked here; dnspython, which sends the queries, is
    loaded by `load` (or the first lookup). `proxy run` loads it after READY=1 instead
    of before (early_start.py; with asyncio, a third of its CPU until then): with the
    servers given, building its resolver cannot fail on the config.
    """

    def __init__(self, servers: Sequence[str] | None, *, timeout: float = 3.0) -> None:
        self._servers = [parse_server(server) for server in servers] if servers else None
        self._timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._cache: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[_Entry]] = {}

    @property
    def reads_system_config(self) -> bool:
        """No servers given: `load` reads the system's resolver configuration, which
        may be unusable (a ConfigError that must come before the proxy says READY=1)."""
        return self._servers is None

    def load(self) -> None:
        """Build the resolver now; ConfigError if the system's configuration is unusable."""
        if self._resolver is not None:
            return
        import dns.asyncresolver
        import dns.exception
        import dns.nameserver

        try:
            if self._servers is not None:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [
                    dns.nameserver.Do53Nameserver(address, port) for address, port in self._servers
                ]
            else:
                resolver = dns.asyncresolver.Resolver()
        except dns.exception.DNSException as exc:
            raise ConfigError(
                f"cannot set up name resolution: {exc}",
                hint='set `dns_servers` in the config (e.g. ["1.1.1.1"])',
            ) from exc
        resolver.lifetime = self._timeout
        resolver.cache = None
        self._resolver = resolver

    async def resolve(self, host: str) -> tuple[IPAddress, ...]:
        literal = _ip_literal(host)
        if literal is not None:
            return (literal,)
        entry = self._cache.get(host)
        if entry is None or entry.expires < time.monotonic():
            entry = await self._lookup_once(host)
        if entry.error:
            raise ResolveError(entry.error)
        return entry.addresses

    async def _lookup_once(self, host: str) -> _Entry:
        import asyncio  # here: the proxy builds a Resolver before it loads asyncio

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
        import asyncio

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
        import dns.resolver

        self.load()
        assert self._resolver is not None
        try:
            answer = await self._resolver.resolve(host, rdtype)
        except dns.resolver.NoAnswer:
            return [], MAX_TTL
        assert answer.rrset is not None
        found = [ipaddress.ip_address(record.address) for record in answer]
        return found, float(answer.rrset.ttl)


@functools.lru_cache(maxsize=1024)
def _ip_literal(host: str) -> IPAddress | None:
    """`host` as an address when it is one. Remembered per name: `ipaddress` takes 3 us
    to refuse a name, and every request asks."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _describe(host: str, exc: BaseException) -> str:
    import dns.exception
    import dns.resolver

    if isinstance(exc, dns.resolver.NXDOMAIN):
        return f"{host} does not exist (NXDOMAIN)"
    if isinstance(exc, dns.exception.Timeout):
        return f"looking up {host} timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return f"no DNS server answered for {host}"
    return f"looking up {host} failed: {type(exc).__name__}: {exc}"
