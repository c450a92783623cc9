"""Verdicts for DNS queries, made before anything leaves the sidecar.

For each question, in order: the class (only IN is served) and type (no zone
transfers or other meta-types), protected values in the
name, names no hostname has, the domain list, zones blocked after tunnel detection,
tunnel heuristics and the per-zone budgets. The result says how to answer (forward,
sinkhole, REFUSED, SERVFAIL) and why; the sidecar writes the audit line before
acting on it.

In learn mode (`domains.enforcement: learn`) a name the list refuses is judged like a
listed one instead, by every later check, and is forwarded (flagged `would_block`)
only if they all pass; a tunnel signal on such a name refuses it whatever
`dns.tunnel_action` says, since the list alone would have. Its answer is then
checked too (`answer_refusal`): an address the proxy would refuse to reach
(private, loopback, metadata, ...) is never handed to the agent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from agentcage.audit.record import ANSWER_REFUSED, WOULD_BLOCK, AuditRecord
from agentcage.dns.budget import ZoneBudgets
from agentcage.dns.names import DomainSet, below, fold_qname, zone_of
from agentcage.dns.plan import DnsView
from agentcage.dns.tunnel import name_reason
from agentcage.dns.values import ValuesUnavailable
from agentcage.dns.wire import Question
from agentcage.errors import DnsError
from agentcage.policy.address_ranges import AddressRules
from agentcage.policy.types import Verdict

DOMAINS_INSPECTOR = "dns-domains"
TUNNEL_INSPECTOR = "dns-tunnel"
VALUES_INSPECTOR = "dns-values"
BUDGET_INSPECTOR = "dns-budget"
WIRE_INSPECTOR = "dns-wire"
ANSWER_INSPECTOR = ANSWER_REFUSED
# What the audit line shows of a name that carries a protected value (and its list entry).
REDACTED = "<redacted>"
# Findings about the agent's behaviour: written whatever `logging.dns_queries` says.
FINDINGS = frozenset({TUNNEL_INSPECTOR, VALUES_INSPECTOR, BUDGET_INSPECTOR, ANSWER_INSPECTOR})

Answer = Literal["forward", "sinkhole", "refused", "servfail"]


class TooManyBlockedZones(DnsError):
    """More zones would be blocked than `dns.max_blocked_zones`: stop answering instead."""


class ValueCheck(Protocol):
    def match(self, name: str) -> str | None:
        """The rule of a protected value in `name`; `ValuesUnavailable` if unknown."""


@dataclass(frozen=True, slots=True)
class QueryDecision:
    answer: Answer
    verdict: Verdict
    reason: str
    inspector: str = DOMAINS_INSPECTOR
    rules: tuple[str, ...] = ()
    newly_blocked: str | None = None  # a zone blocked from this query on
    stop: DnsError | None = field(default=None, compare=False)  # stop DNS after answering
    would_block: bool = False  # learn mode forwarded a name the list refuses


class QueryJudge:
    def __init__(
        self,
        config: DnsView,
        blocked_zones: Iterable[str] = (),
        values: ValueCheck | None = None,
    ) -> None:
        self.blocked_zones: set[str] = set(blocked_zones)
        self._values = values
        self._config = config
        self._budgets = ZoneBudgets(config.dns)
        self._apply(config)

    def reconfigure(self, config: DnsView) -> None:
        """New domain list and thresholds. Blocked zones stay blocked; spent budgets stay
        spent unless the `dns:` settings changed."""
        if config.dns != self._config.dns:
            self._budgets = ZoneBudgets(config.dns)
        self._apply(config)

    def _apply(self, config: DnsView) -> None:
        self._config = config
        self._domains = DomainSet(config.domains.entries)
        self._allowlist = config.domains.mode == "allowlist"
        self._learning = config.domains.learning
        self._addresses = AddressRules(config.network.allow_cidrs)

    def blocked_zone(self, qname: str) -> str | None:
        labels = fold_qname(qname).split(".")
        suffixes = (".".join(labels[start:]) for start in range(len(labels)))
        return next((name for name in suffixes if name in self.blocked_zones), None)

    def decide(self, question: Question, now: float) -> QueryDecision:
        if question.rdclass != dns.rdataclass.IN:
            klass = dns.rdataclass.to_text(question.rdclass)
            return QueryDecision("refused", Verdict.BLOCK, f"class {klass} is not served")
        if question.rdtype != dns.rdatatype.ANY and dns.rdatatype.is_metatype(question.rdtype):
            # Transfers, OPT, TSIG/TKEY: not questions a stub resolver asks.
            return QueryDecision("refused", Verdict.BLOCK, f"type {question.qtype} is not served")
        rule, unavailable = None, None
        try:
            rule = self._values.match(question.name) if self._values is not None else None
        except ValuesUnavailable as exc:
            unavailable = str(exc)
        if rule is not None:
            role, _, name = rule.partition(":")
            reason = f"the name carries a protected value ({role} {name})"
            return QueryDecision("refused", Verdict.BLOCK, reason, VALUES_INSPECTOR, (rule,))
        if not question.hostname:
            reason = "a label holds bytes no hostname has"
            return QueryDecision("refused", Verdict.BLOCK, reason, TUNNEL_INSPECTOR)
        entry = self._domains.match(question.name)
        refused = (entry is not None) != self._allowlist
        if refused and not self._learning:
            return self._local(question, entry)
        zone = self.blocked_zone(question.name)
        if zone is not None:
            reason = f"zone {zone} blocked after DNS tunnel detection"
            return QueryDecision("refused", Verdict.BLOCK, reason, TUNNEL_INSPECTOR)
        if unavailable is not None:
            reason = f"cannot look for protected values: {unavailable}"
            return QueryDecision("servfail", Verdict.BLOCK, reason, VALUES_INSPECTOR)
        listed = entry if self._allowlist and not refused else None
        return self._forwardable(question, listed, now, would_block=refused)

    def _forwardable(
        self, question: Question, entry: str | None, now: float, *, would_block: bool = False
    ) -> QueryDecision:
        cfg = self._config.dns
        zone = zone_of(question.name, entry)
        signal = name_reason(question.name, zone, cfg)
        tunnel = f"possible DNS tunnel in {zone}: {signal}"
        if signal is not None and cfg.tunnel_action == "block":
            return self._block(zone, tunnel)
        if signal is not None and would_block:
            reason = f"{tunnel}; refused in learn mode, as the domain list refuses the name"
            return QueryDecision("refused", Verdict.BLOCK, reason, TUNNEL_INSPECTOR)
        budget_zone = entry if entry is not None else ".".join(question.labels[-2:])
        labels = [label for label in below(question.name, budget_zone).split(".") if label]
        spent = self._budgets.admit(budget_zone, question.name, labels, now)
        if spent is not None:
            return QueryDecision("refused", Verdict.BLOCK, spent, BUDGET_INSPECTOR)
        if signal is not None:
            return QueryDecision("forward", Verdict.FLAG, tunnel, TUNNEL_INSPECTOR)
        if would_block:
            listing = "not in allowlist" if self._allowlist else "in blocklist"
            reason = f"{listing}; forwarded in learn mode (would block)"
            return QueryDecision("forward", Verdict.FLAG, reason, would_block=True)
        reason = f"in allowlist ({entry})" if entry is not None else "not in blocklist"
        return QueryDecision("forward", Verdict.ALLOW, reason)

    def answer_refusal(self, reply: dns.message.Message) -> QueryDecision | None:
        """For an answer to a `would_block` query: a refusal if it holds an address (A,
        AAAA, an HTTPS or SVCB address hint) the proxy would refuse to connect to
        (`network.allow_cidrs` lifts it as there)."""
        for section in (reply.answer, reply.additional):
            for rrset in section:
                for address in _addresses(rrset):
                    refusal = self._addresses.refusal(ipaddress.ip_address(address))
                    if refusal is not None:
                        reason = f"answer refused in learn mode: {refusal}"
                        return QueryDecision("refused", Verdict.BLOCK, reason, ANSWER_INSPECTOR)
        return None

    def _block(self, zone: str, reason: str) -> QueryDecision:
        limit = self._config.dns.max_blocked_zones
        stop = None
        if zone not in self.blocked_zones and len(self.blocked_zones) >= limit:
            stop = TooManyBlockedZones(
                f"DNS tunnel detection wants to block more than {limit} zones "
                f"(latest: {zone}); stopping DNS (fail closed)",
                hint="inspect the audit log for the agent's queries; raise "
                "dns.max_blocked_zones only if these zones are legitimate",
            )
        else:
            self.blocked_zones.add(zone)
        return QueryDecision("refused", Verdict.BLOCK, reason, TUNNEL_INSPECTOR, (), zone, stop)

    def _local(self, question: Question, entry: str | None) -> QueryDecision:
        reason = "not in allowlist" if self._allowlist else f"in blocklist ({entry})"
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return QueryDecision("sinkhole", Verdict.BLOCK, reason)
        return QueryDecision("refused", Verdict.BLOCK, reason)

    def record(
        self,
        question: Question | None,
        client: str,
        decision: QueryDecision,
        rcode: str | None,
        answers: int | None,
    ) -> AuditRecord:
        """The audit record of `decision`; `rcode`/`answers` only for local answers."""
        extra: dict[str, object] = {}
        if rcode is not None:
            extra["rcode"] = rcode
        if decision.answer == "sinkhole":
            extra["sinkhole"] = True
        if decision.newly_blocked is not None and decision.stop is None:
            extra["blocked_zone"] = decision.newly_blocked
        qname = question.name if question is not None else ""
        if decision.rules:  # the name holds a protected value: the log must not
            entry = self._domains.match(qname)
            qname = REDACTED + (f".{entry}" if entry is not None else "")
        return AuditRecord(
            kind="dns",
            verdict=decision.verdict.value,
            cage=self._config.name,
            client=client,
            qname=qname,
            qtype=question.qtype if question is not None else "",
            answers=answers,
            reason=decision.reason,
            inspector=decision.inspector,
            rules=decision.rules,
            extra=extra,
            learn=WOULD_BLOCK if decision.would_block else "",
        )


def _addresses(rrset: dns.rrset.RRset) -> list[str]:
    """The addresses an answer hands out: A and AAAA records, and the address hints of
    HTTPS and SVCB records (clients connect to those too)."""
    if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return [rdata.address for rdata in rrset]
    if rrset.rdtype in (dns.rdatatype.HTTPS, dns.rdatatype.SVCB):
        return [
            str(address)
            for rdata in rrset
            for param in rdata.params.values()
            for address in getattr(param, "addresses", ())
        ]
    return []


def rejected(reason: str) -> QueryDecision:
    """The decision for a message that is not a query we judge (malformed, ...)."""
    return QueryDecision("refused", Verdict.BLOCK, reason, WIRE_INSPECTOR)
