"""DNS tunnel heuristics: pure functions and one bounded rate tracker.

A tunnel smuggles data out in query names sent to a zone whose name server the
attacker runs. Three signals, each tuned so normal names never trip them (the
numbers and the reasoning are in docs/dns.md):

* a long name below the zone (tunnels fill names to the 253-byte limit);
* a long hyphen-free run that looks encoded: high entropy (base32/base36) or many
  digits (hex). Legitimate long labels are hyphenated words; ids and hashes are short;
* many distinct names under one zone in a short window (each tunnel query must be
  unique to defeat caches).
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

from agentcage.config.schema import DnsConfig
from agentcage.dns.names import below

_RUN = re.compile(r"[a-z0-9]+")
# Zones tracked at once for the unique-name rate; the least recently seen is dropped.
MAX_TRACKED_ZONES = 4096


def shannon_entropy(text: str) -> float:
    """Bits per character of `text`'s own character distribution."""
    if not text:
        return 0.0
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def digit_share(text: str) -> float:
    return sum(ch.isdigit() for ch in text) / len(text) if text else 0.0


def encoded_run(label: str, cfg: DnsConfig) -> str | None:
    """The first hyphen-free run in `label` that looks like encoded data, if any."""
    runs: list[str] = _RUN.findall(label.lower())
    for run in runs:
        if len(run) < cfg.random_run_length:
            continue
        if shannon_entropy(run) >= cfg.random_run_entropy or (
            digit_share(run) >= cfg.random_run_digits
        ):
            return run
    return None


def name_reason(qname: str, zone: str, cfg: DnsConfig) -> str | None:
    """Why this one name looks like tunnelled data, or None when it does not."""
    data = below(qname, zone)
    if len(data) > cfg.max_subdomain_length:
        return f"{len(data)} characters below {zone} (limit {cfg.max_subdomain_length})"
    for label in data.split("."):
        run = encoded_run(label, cfg)
        if run is not None:
            return (
                f"encoded-looking label ({len(run)} characters, "
                f"{shannon_entropy(run):.2f} bits/char, {digit_share(run):.0%} digits)"
            )
    return None


@dataclass(frozen=True, slots=True)
class TunnelSignal:
    zone: str
    reason: str


class UniqueNameRate:
    """Distinct names per zone within a sliding window, in bounded memory.

    Per zone it keeps at most `limit + 1` names (enough to know the limit is passed)
    and it tracks at most `MAX_TRACKED_ZONES` zones.
    """

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._zones: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()

    def add(self, zone: str, name: str, now: float) -> int:
        """Record `name` under `zone` at `now`; the distinct count in the window."""
        seen = self._zones.pop(zone, None)
        if seen is None:
            seen = deque()
        while seen and seen[0][0] <= now - self._window:
            seen.popleft()
        if all(existing != name for _, existing in seen):
            seen.append((now, name))
            if len(seen) > self._limit + 1:
                seen.popleft()
        self._zones[zone] = seen
        while len(self._zones) > MAX_TRACKED_ZONES:
            self._zones.popitem(last=False)
        return len(seen)


class TunnelDetector:
    """Flags queries inside forwarded zones; the caller decides what to do."""

    def __init__(self, cfg: DnsConfig) -> None:
        self._cfg = cfg
        self._rate = UniqueNameRate(cfg.max_unique_subdomains, cfg.unique_window)

    def check(self, qname: str, zone: str, now: float) -> TunnelSignal | None:
        reason = name_reason(qname, zone, self._cfg)
        count = self._rate.add(zone, qname, now)
        if reason is None and count > self._cfg.max_unique_subdomains:
            reason = (
                f"more than {self._cfg.max_unique_subdomains} distinct names under {zone} "
                f"within {self._cfg.unique_window}s"
            )
        return TunnelSignal(zone, reason) if reason is not None else None
