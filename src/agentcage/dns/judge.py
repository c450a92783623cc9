"""Verdicts for DNS queries: what dnsmasq did, why, and whether it looks like a tunnel.

dnsmasq enforces the domain list itself (see `render`); this module explains its
answers in audit records and runs tunnel detection on the queries it forwards.
Blocking a zone after detection is the caller's job: `observe` says when.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agentcage.config.schema import CageConfig
from agentcage.dns.names import DomainSet, normalize_qname, zone_of
from agentcage.dns.querylog import UNPRINTABLE, Query
from agentcage.dns.tunnel import TunnelDetector, TunnelSignal
from agentcage.errors import DnsError
from agentcage.policy.audit import AuditRecord

DOMAINS_INSPECTOR = "dns-domains"
TUNNEL_INSPECTOR = "dns-tunnel"


class TooManyBlockedZones(DnsError):
    """More zones would be blocked than `dns.max_blocked_zones`: stop answering instead."""


class UncontainedTunnel(DnsError):
    """A forwarded name dnsmasq could not print, so no zone can be blocked: stop instead."""


@dataclass(frozen=True, slots=True)
class Observation:
    signal: TunnelSignal | None
    newly_blocked: str | None  # a zone to add to dnsmasq's refused zones now


class QueryJudge:
    def __init__(self, config: CageConfig, blocked_zones: Iterable[str] = ()) -> None:
        self._config = config
        self._domains = DomainSet(config.domains.entries)
        self._allowlist = config.domains.mode == "allowlist"
        self._detector = TunnelDetector(config.dns)
        self._signals: dict[int, TunnelSignal] = {}
        self.blocked_zones: set[str] = set(blocked_zones)

    def reconfigure(self, config: CageConfig) -> None:
        """New domain list and thresholds; blocked zones stay blocked."""
        self._config = config
        self._domains = DomainSet(config.domains.entries)
        self._allowlist = config.domains.mode == "allowlist"
        self._detector = TunnelDetector(config.dns)

    def is_forwarded(self, qname: str) -> bool:
        covered = self._domains.match(qname) is not None
        return covered == self._allowlist and self.blocked_zone(qname) is None

    def blocked_zone(self, qname: str) -> str | None:
        labels = normalize_qname(qname).split(".")
        suffixes = (".".join(labels[start:]) for start in range(len(labels)))
        return next((name for name in suffixes if name in self.blocked_zones), None)

    def observe(self, query: Query, now: float) -> Observation:
        """Run tunnel detection on a query dnsmasq is about to forward."""
        if query.qname == UNPRINTABLE or not self.is_forwarded(query.qname):
            return Observation(None, None)
        entry = self._domains.match(query.qname) if self._allowlist else None
        signal = self._detector.check(query.qname, zone_of(query.qname, entry), now)
        if signal is None:
            return Observation(None, None)
        self._signals[query.serial] = signal
        if self._config.dns.tunnel_action != "block" or signal.zone in self.blocked_zones:
            return Observation(signal, None)
        if len(self.blocked_zones) >= self._config.dns.max_blocked_zones:
            raise TooManyBlockedZones(
                f"DNS tunnel detection wants to block more than "
                f"{self._config.dns.max_blocked_zones} zones (latest: {signal.zone}); "
                "stopping DNS (fail closed)",
                hint="inspect the audit log for the agent's queries; raise "
                "dns.max_blocked_zones only if these zones are legitimate",
            )
        self.blocked_zones.add(signal.zone)
        return Observation(signal, signal.zone)

    def record(self, query: Query) -> AuditRecord:
        """The audit record for a finished query."""
        signal = self._signals.pop(query.serial, None)
        extra: dict[str, object] = {"rcode": query.rcode} if query.rcode else {}
        if query.upstream:
            extra["upstream"] = query.upstream
        if query.forwarded:
            if not query.answered:
                extra["result"] = "no reply logged"
            answers = query.answers if query.answered else None
            if query.qname == UNPRINTABLE:
                reason = (
                    "forwarded a name with bytes no hostname has (dnsmasq logs it as "
                    "unprintable): possible DNS tunnel"
                )
                return self._audit(query, "flag", answers, reason, extra, TUNNEL_INSPECTOR)
            if signal is None:
                return self._audit(query, "allow", answers, self._allow_reason(query), extra)
            if self._config.dns.tunnel_action == "block":
                extra["blocked_zone"] = signal.zone
            reason = f"possible DNS tunnel in {signal.zone}: {signal.reason}"
            return self._audit(query, "flag", answers, reason, extra, TUNNEL_INSPECTOR)
        if query.values and query.values[0].split(" ", 1)[0] in _SINKHOLES:
            extra["sinkhole"] = True
        zone = self.blocked_zone(query.qname)
        covered = self._domains.match(query.qname) is not None
        if zone is not None and covered == self._allowlist:
            reason = f"zone {zone} blocked after DNS tunnel detection"
            return self._audit(query, "block", query.answers, reason, extra, TUNNEL_INSPECTOR)
        return self._audit(query, "block", query.answers, self._block_reason(query), extra)

    def enforce(self, query: Query) -> None:
        """After `record`: stop DNS for a tunnel that blocking a zone cannot contain.

        A binary label (space, NUL, ...) is logged without its name, so its zone is
        unknown; with `tunnel_action: block` the only safe answer is no DNS at all.
        """
        if (
            query.forwarded
            and query.qname == UNPRINTABLE
            and self._config.dns.tunnel_action == "block"
        ):
            raise UncontainedTunnel(
                "a query with a binary name was forwarded; its zone is unknown, so DNS "
                "stops (fail closed, tunnel_action: block)",
                hint="see the dns-tunnel line in the audit log; no legitimate hostname "
                "has such bytes",
            )

    def _audit(
        self,
        query: Query,
        verdict: str,
        answers: int | None,
        reason: str,
        extra: dict[str, object],
        inspector: str = DOMAINS_INSPECTOR,
    ) -> AuditRecord:
        return AuditRecord(
            kind="dns",
            verdict=verdict,
            cage=self._config.name,
            client=query.client,
            qname=normalize_qname(query.qname),
            qtype=query.qtype,
            answers=answers,
            reason=reason,
            inspector=inspector,
            extra=extra,
        )

    def _allow_reason(self, query: Query) -> str:
        if self._allowlist:
            return f"in allowlist ({self._domains.match(query.qname)})"
        return "not in blocklist"

    def _block_reason(self, query: Query) -> str:
        entry = self._domains.match(query.qname)
        if self._allowlist:
            return "not in allowlist" if entry is None else "refused by dnsmasq"
        return f"in blocklist ({entry})" if entry is not None else "refused by dnsmasq"


_SINKHOLES = ("198.51.100.1", "2001:db8::1")
