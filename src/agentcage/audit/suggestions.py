"""What a learning cage needed: the names its audit lines mark `would-block`, grouped.

Each name is grouped under its registrable domain (the public suffix plus one label:
`files.pythonhosted.org` under `pythonhosted.org`, `x.bar.co.uk` under `bar.co.uk`),
found with the Public Suffix List snapshot bundled in `publicsuffix2`. The list is
read from that package's own file; nothing is fetched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from publicsuffix2 import PublicSuffixList  # type: ignore[import-untyped]

from agentcage.audit.reading import Record
from agentcage.audit.record import ANSWER_REFUSED, WOULD_BLOCK

# Decision lines: a `response` line repeats its request, a `websocket` line its socket.
_REQUEST_KINDS = frozenset({"http", "websocket"})


@dataclass
class ObservedName:
    name: str
    requests: int = 0  # proxy decision lines (HTTP requests, WebSocket frames)
    queries: int = 0  # DNS queries
    first: str = ""
    last: str = ""

    def count(self, record: Record) -> None:
        if record.get("kind") == "dns":
            self.queries += 1
        else:
            self.requests += 1
        when = str(record.get("time", ""))
        if when and (not self.first or when < self.first):
            self.first = when
        if when > self.last:
            self.last = when

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "requests": self.requests,
            "queries": self.queries,
            "first": self.first,
            "last": self.last,
        }


@dataclass
class DomainGroup:
    """The observed names under one registrable domain, sorted."""

    domain: str
    names: list[ObservedName] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(name.requests for name in self.names)

    @property
    def queries(self) -> int:
        return sum(name.queries for name in self.names)

    def as_dict(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "requests": self.requests,
            "queries": self.queries,
            "names": [name.as_dict() for name in self.names],
        }


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def registrable_domain(name: str) -> str:
    """`name`'s registrable domain; a name that is itself a public suffix stands alone.

    A top-level domain the list does not know (`.example`, `.internal`) is a public
    suffix of one label, as the list's own default rule says; publicsuffix2 would
    answer the bare TLD for those.
    """
    if _suffixes().get_tld(name, strict=True) is None:
        return ".".join(name.split(".")[-2:])
    found = _suffixes().get_sld(name)
    return str(found) if found else name


def observed_name(record: Record) -> str | None:
    """The host or DNS name of a `would-block` decision line, else None."""
    if record.get("learn") != WOULD_BLOCK:
        return None
    kind = record.get("kind")
    if kind in _REQUEST_KINDS:
        raw = record.get("host")
    elif kind == "dns":
        raw = record.get("qname")
    else:
        return None
    name = str(raw or "").strip().lower().rstrip(".")
    return name or None


def suggest(
    records: Iterable[Record], covered: Callable[[str], bool] = lambda name: False
) -> list[DomainGroup]:
    """The groups of would-block names not `covered` (already listed), by domain.

    A name only queried whose answer the DNS sidecar refused (it pointed at internal
    addresses) is left out: listing it would not let the agent use it.
    """
    names: dict[str, ObservedName] = {}
    unusable: set[str] = set()
    for record in records:
        if record.get("kind") == "dns" and record.get("inspector") == ANSWER_REFUSED:
            unusable.add(str(record.get("qname", "")).lower().rstrip("."))
        name = observed_name(record)
        if name is None or covered(name):
            continue
        names.setdefault(name, ObservedName(name)).count(record)
    groups: dict[str, DomainGroup] = {}
    for name in sorted(names):
        if name in unusable and not names[name].requests:
            continue
        domain = registrable_domain(name)
        groups.setdefault(domain, DomainGroup(domain)).names.append(names[name])
    return [groups[domain] for domain in sorted(groups)]


@dataclass(frozen=True)
class Suggestion:
    """The new `domains:` section: `entries` of the current list (`mode`), changed by
    `groups`. Without a current list (log files only), an allowlist of the groups."""

    groups: list[DomainGroup]
    mode: str = "allowlist"
    entries: tuple[str, ...] = ()
    cage: str = ""
    by_domain: bool = False

    def added(self, group: DomainGroup) -> list[str]:
        return [group.domain] if self.by_domain else [name.name for name in group.names]

    def result(self) -> list[str]:
        """The list to configure: allowlist entries plus the needed ones, or the blocklist
        without the used ones."""
        if self.mode == "blocklist":
            used = {name.name for group in self.groups for name in group.names}
            return [entry for entry in self.entries if entry not in used]
        new = [entry for group in self.groups for entry in self.added(group)]
        return list(dict.fromkeys([*self.entries, *new]))

    def as_dict(self) -> dict[str, object]:
        return {
            "cage": self.cage or None,
            "mode": self.mode,
            "current": list(self.entries),
            "groups": [group.as_dict() for group in self.groups],
            "suggested": self.result(),
        }

    def yaml(self) -> str:
        """The section as YAML, with a comment per group saying what was seen."""
        names = [name for group in self.groups for name in group.names]
        whose = f" of cage {self.cage}" if self.cage else ""
        lines = [
            f"# {_count(len(names), 'name')} in {_count(len(self.groups), 'domain')} that the "
            f"{self.mode}{whose} "
            "refused while learning (learn: would-block)",
        ]
        times = sorted(t for name in names for t in (name.first, name.last) if t)
        if times:
            requests = sum(name.requests for name in names)
            queries = sum(name.queries for name in names)
            lines.append(
                f"# {_count(requests, 'request')} and {_count(queries, 'DNS query')}, "
                f"{times[0]} to {times[-1]}"
            )
        key = "block" if self.mode == "blocklist" else "allow"
        lines += ["domains:", f"  {key}:"]
        if self.mode == "blocklist":
            lines += [f"    # used while learning, left out: {n.name}" for n in names]
            lines += [f"    - {entry}" for entry in self.result()]
        else:
            lines += [f"    - {entry}" for entry in dict.fromkeys(self.entries)]
            for group in self.groups:
                lines.append(f"    # {_seen(group, self.by_domain)}")
                lines += [f"    - {entry}" for entry in self.added(group)]
        lines.append("  enforcement: enforce")
        return "\n".join(lines) + "\n"


def _seen(group: DomainGroup, by_domain: bool) -> str:
    counts = f"{_count(group.requests, 'request')}, {_count(group.queries, 'DNS query')}"
    if by_domain:
        return f"{group.domain}: {', '.join(n.name for n in group.names)} ({counts})"
    return f"{group.domain}: {counts}"


def _count(number: int, noun: str) -> str:
    if number == 1:
        return f"1 {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{number} {plural}"
