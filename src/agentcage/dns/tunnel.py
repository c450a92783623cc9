"""DNS tunnel heuristics on one name: pure functions.

A tunnel smuggles data out in query names sent to a zone whose name server the
attacker runs. Two signals, each tuned so normal names never trip them (the numbers
and the reasoning are in docs/dns.md):

* a long name below the zone (tunnels fill names to the 253-byte limit);
* a long hyphen-free run that looks encoded: high entropy (base32/base36) or many
  digits (hex). Legitimate long labels are hyphenated words; ids and hashes are short.

The third, many distinct names under one zone, is a budget (`budget.py`).
"""

from __future__ import annotations

import re

from agentcage.dns.names import below
from agentcage.dns.plan import DnsLimitsView
from agentcage.policy.shannon import shannon_entropy

_RUN = re.compile(r"[a-z0-9]+")


def digit_share(text: str) -> float:
    return sum(ch.isdigit() for ch in text) / len(text) if text else 0.0


def encoded_run(label: str, cfg: DnsLimitsView) -> str | None:
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


def name_reason(qname: str, zone: str, cfg: DnsLimitsView) -> str | None:
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
