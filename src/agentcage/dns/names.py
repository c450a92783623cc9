"""Domain names as the sidecar sees them: validation, suffix matching and zones.

Matching follows the config's rule (and dnsmasq's own `/domain/` rule): an entry
`example.com` matches `example.com` and every name below it, never `notexample.com`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

# Letters, digits, `-` and `_` (for `_dmarc`, `_acme-challenge`); nothing that means
# something in a dnsmasq directive (`/`, `#`, `,`, whitespace) can pass.
# fullmatch, never `$`: `$` also matches before a trailing newline ("a\n").
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
MAX_NAME = 253


class BadDomain(ValueError):
    """A string that cannot be written into a dnsmasq directive as a domain."""


def checked_domain(name: str) -> str:
    """`name` lower-cased without a trailing dot, or `BadDomain` naming the problem."""
    clean = name.strip().lower().rstrip(".")
    if not clean or len(clean) > MAX_NAME:
        raise BadDomain(f"{name!r} is not a domain name (empty or longer than {MAX_NAME})")
    for label in clean.split("."):
        if not _LABEL.fullmatch(label):
            raise BadDomain(
                f"{name!r} is not a domain name: label {label!r} may hold only letters, "
                "digits, '-' and '_'"
            )
    return clean


def is_domain_entry(entry: str) -> bool:
    """Domain entries go to DNS; IP and CIDR entries only concern the proxy."""
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return True
    return False


def domain_entries(entries: Iterable[str]) -> list[str]:
    """The domain entries of `domains.list`, validated, de-duplicated, in order."""
    out: list[str] = []
    for entry in entries:
        if is_domain_entry(entry):
            name = checked_domain(entry)
            if name not in out:
                out.append(name)
    return out


def fold_qname(qname: str) -> str:
    """Lower-case, no trailing dot: DNS compares names so and nothing more.

    Not `agentcage.policy.canonical_hosts.canonical_host`: a query name is labels, never an
    address (`0x7f.1` is a name to look up, not 127.0.0.1), arrives as ASCII already,
    and may hold bytes no hostname has (the judge refuses those, and must see them).
    """
    return qname.strip().lower().rstrip(".")


class DomainSet:
    """A list of domain entries answering "which entry covers this name?"."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._entries = frozenset(domain_entries(entries))

    def entries(self) -> list[str]:
        return sorted(self._entries)

    def match(self, qname: str) -> str | None:
        """The most specific entry covering `qname`, or None."""
        labels = fold_qname(qname).split(".")
        for start in range(len(labels)):
            candidate = ".".join(labels[start:])
            if candidate in self._entries:
                return candidate
        return None


def zone_of(qname: str, entry: str | None) -> str:
    """The zone a query's data would be delivered to.

    A tunnel needs a name server the attacker runs, so data sits in the labels below
    a delegated zone: `<data>.evil.workers.dev` under the entry `workers.dev`. The zone
    is the covering entry (or, without one, the last two labels) plus one more label
    when the name has two or more labels beyond it.
    """
    name = fold_qname(qname)
    labels = name.split(".")
    base = entry if entry is not None else ".".join(labels[-2:])
    base_count = base.count(".") + 1
    if len(labels) >= base_count + 2:
        return ".".join(labels[-(base_count + 1) :])
    return base


def below(qname: str, zone: str) -> str:
    """The part of `qname` left of `zone` (`a.b` for `a.b.x.com` in `x.com`)."""
    name = fold_qname(qname)
    if name == zone:
        return ""
    return name[: -(len(zone) + 1)] if name.endswith("." + zone) else name
