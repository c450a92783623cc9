"""Host names and addresses as the domain rules see them.

An agent can spell one address many ways (`127.0.0.1`, `2130706433`, `0x7f.1`,
`0177.0.0.1`, `[::ffff:127.0.0.1]`) and one name many ways (`API.Example.COM.`,
full-width dots, Unicode look-alikes). Everything is reduced to one canonical form
before it is compared, so no spelling slips past a rule written in another.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAME = re.compile(r"^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63}){0,126}$")


class BadHost(ValueError):
    """A host that has no canonical form (bad IDNA, malformed numeric address, ...)."""


@dataclass(frozen=True, slots=True)
class CanonicalHost:
    """A canonical host: a lower-case ASCII name, or an IP address."""

    name: str
    address: IPAddress | None = None

    @property
    def is_ip(self) -> bool:
        return self.address is not None


# Requests name the same few hosts over and over; a CanonicalHost is immutable, so it is shared.
@functools.lru_cache(maxsize=4096)
def canonical_host(raw: str) -> CanonicalHost:
    """Lower-case, strip brackets and trailing dots, IDNA-encode, and parse IP spellings."""
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            address = ipaddress.ip_address(text)
        except ValueError as exc:
            raise BadHost(f"{raw!r} is not a valid IPv6 address") from exc
        return CanonicalHost(str(address), address)
    name = _to_ascii(text)
    v4 = _parse_ipv4(name)
    if v4 is not None:
        return CanonicalHost(str(v4), v4)
    return CanonicalHost(name)


def _to_ascii(text: str) -> str:
    if text.isascii():
        name = text.lower()
    else:
        try:
            # The IDNA 2003 codec also maps full-width and ideographic dots to ".".
            name = text.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise BadHost(f"{text!r} is not a valid internationalized domain name") from exc
    name = name.rstrip(".")
    if not _NAME.match(name):
        raise BadHost(f"{text!r} is not a host name (letters, digits, '-', '_' and dots)")
    return name


def _parse_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """Parse the forms `inet_aton` and URL parsers accept: 1-4 parts, decimal/octal/hex.

    Like the WHATWG URL parser, a name whose last label is numeric is an IPv4
    address or an error: `1.2.3.999999` must not be treated as a domain name.
    """
    parts = name.split(".")
    if not _NUMERIC_PART.match(parts[-1]):
        return None
    numbers: list[int] = []
    for part in parts:
        if not _NUMERIC_PART.match(part):
            raise BadHost(f"{name!r} mixes a numeric address and a name")
        numbers.append(_number(part, name))
    if len(numbers) > 4:
        raise BadHost(f"{name!r} has too many parts for an IPv4 address")
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise BadHost(f"{name!r} is out of range for an IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _number(part: str, name: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if not all(ch in "01234567" for ch in part):
            raise BadHost(f"{name!r} has an invalid octal part {part!r}")
        return int(part, 8)
    return int(part)


def domain_matches(host: str, domain: str) -> bool:
    """`domain` matches itself and its subdomains (`a.example.com`, not `notexample.com`)."""
    return host == domain or host.endswith("." + domain)


class HostSet:
    """Domain names (matching subdomains too) and IP networks; changeable at run time."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self._domains: set[str] = set()
        self._networks: set[IPNetwork] = set()
        for entry in entries:
            self.add(entry)

    def add(self, entry: str) -> None:
        network = _as_network(entry)
        if network is not None:
            self._networks.add(network)
        else:
            self._domains.add(canonical_host(entry).name)

    def remove(self, entry: str) -> bool:
        """Remove `entry`; False if it was not there."""
        network = _as_network(entry)
        if network is not None:
            found = network in self._networks
            self._networks.discard(network)
            return found
        name = canonical_host(entry).name
        found = name in self._domains
        self._domains.discard(name)
        return found

    def __contains__(self, host: CanonicalHost) -> bool:
        if host.address is not None:
            return any(_covers(network, host.address) for network in self._networks)
        name = host.name
        # Walk up the labels: O(labels) set lookups instead of a scan of every entry.
        while True:
            if name in self._domains:
                return True
            dot = name.find(".")
            if dot < 0:
                return False
            name = name[dot + 1 :]

    def __len__(self) -> int:
        return len(self._domains) + len(self._networks)

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(self._domains)


def _as_network(entry: str) -> IPNetwork | None:
    text = entry.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    try:
        host = canonical_host(text)
    except BadHost:
        return None
    if host.address is not None:
        return ipaddress.ip_network(host.address)
    return None


def _covers(network: IPNetwork, address: IPAddress) -> bool:
    if address in network:
        return True
    # ::ffff:10.0.0.1 reaches 10.0.0.1; let a v4 entry cover its mapped form and back.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped in network
    return False
