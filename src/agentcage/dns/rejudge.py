"""Re-judging recorded DNS queries under a candidate config, for `policy replay`.

The candidate's `QueryJudge` sees each logged query in recorded order: the domain
list, names no hostname has, the tunnel heuristics and the zones they block (tunnel
findings are always logged, so those blocks replay faithfully). Not replayed: the
per-zone budgets (they count queries `logging.dns_queries` may have left out; the
judge runs with them off), protected values in names (the log holds the name
redacted) and messages that were not queries.
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from agentcage.config.schema import CageConfig
from agentcage.dns.judge import (
    BUDGET_INSPECTOR,
    DOMAINS_INSPECTOR,
    TUNNEL_INSPECTOR,
    VALUES_INSPECTOR,
    WIRE_INSPECTOR,
    QueryJudge,
)
from agentcage.dns.wire import question_of
from agentcage.policy.replay import Record

_NOT_REPLAYED = {
    WIRE_INSPECTOR: "DNS messages that were not queries",
    VALUES_INSPECTOR: "DNS names carrying protected values (redacted in the log)",
    BUDGET_INSPECTOR: "DNS budget decisions (they count queries the log may not hold)",
}
_UNLIMITED = 1 << 62


class QueryRedecider:
    redecidable = frozenset({DOMAINS_INSPECTOR, TUNNEL_INSPECTOR})

    def __init__(self, config: CageConfig) -> None:
        no_budgets = config.dns.model_copy(
            update={"max_unique_subdomains": _UNLIMITED, "max_unique_labels": _UNLIMITED}
        )
        self._judge = QueryJudge(config.model_copy(update={"dns": no_budgets}))

    def unreplayable(self, record: Record) -> str | None:
        inspector = str(record.get("inspector", ""))
        if inspector in _NOT_REPLAYED:
            return _NOT_REPLAYED[inspector]
        if str(record.get("reason", "")).startswith("class "):
            return "DNS queries of a class other than IN (the class is not in the log)"
        return None

    def decide(self, record: Record) -> tuple[str, str, str]:
        try:
            name = dns.name.from_text(str(record.get("qname", "")) or ".")
            rdtype = dns.rdatatype.from_text(str(record.get("qtype", "")))
        except (dns.exception.DNSException, ValueError) as exc:
            return "block", WIRE_INSPECTOR, f"cannot re-read the query: {exc}"
        question = question_of(dns.rrset.RRset(name, dns.rdataclass.IN, rdtype))
        decision = self._judge.decide(question, 0.0)
        return decision.verdict.value, decision.inspector, decision.reason
