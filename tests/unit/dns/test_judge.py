"""The judge: what each question gets, decided before anything leaves."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rrset
import pytest

from agentcage.dns.judge import QueryDecision, QueryJudge, TooManyBlockedZones
from agentcage.dns.values import ValuesUnavailable
from agentcage.dns.wire import Question, question_of
from tests.unit.dns.builders import cage_config

HEX_LABEL = "3f2504e04f8911d39a0c0305e82c3301aabbccdd"


def _q(name: str | dns.name.Name, qtype: str = "A", qclass: str = "IN") -> Question:
    return question_of(dns.message.make_query(name, qtype, qclass).question[0])


def _decide(judge: QueryJudge, name: str, qtype: str = "A", now: float = 0.0) -> QueryDecision:
    return judge.decide(_q(name, qtype), now)


class FakeValues:
    def __init__(self, rule: str | None = None, broken: bool = False) -> None:
        self.rule, self.broken = rule, broken

    def match(self, name: str) -> str | None:
        if self.broken:
            raise ValuesUnavailable("/run/names.json cannot be read (No such file)")
        return self.rule if "secret" in name else None


@pytest.mark.parametrize(
    ("name", "qtype", "answer", "reason"),
    [
        ("api.allowed.example", "A", "forward", "in allowlist (allowed.example)"),
        ("allowed.example", "TXT", "forward", "in allowlist (allowed.example)"),
        ("evil.example", "A", "sinkhole", "not in allowlist"),
        ("evil.example", "AAAA", "sinkhole", "not in allowlist"),
        ("evil.example", "TXT", "refused", "not in allowlist"),
        ("evil.example", "ANY", "refused", "not in allowlist"),
        ("notallowed.example", "A", "sinkhole", "not in allowlist"),
    ],
)
def test_allowlist_answers(name: str, qtype: str, answer: str, reason: str) -> None:
    decision = _decide(QueryJudge(cage_config()), name, qtype)
    assert (decision.answer, decision.reason) == (answer, reason)
    assert decision.verdict == ("allow" if answer == "forward" else "block")


def test_blocklist_answers() -> None:
    judge = QueryJudge(cage_config(domains={"block": ["pastebin.com"]}))
    assert _decide(judge, "x.pastebin.com").answer == "sinkhole"
    refused = _decide(judge, "x.pastebin.com", "TXT")
    assert (refused.answer, refused.reason) == ("refused", "in blocklist (pastebin.com)")
    allowed = _decide(judge, "anything.example", "MX")
    assert (allowed.answer, allowed.reason) == ("forward", "not in blocklist")


def test_other_classes_and_binary_labels_are_refused() -> None:
    judge = QueryJudge(cage_config())
    chaos = judge.decide(_q("version.bind", "TXT", "CH"), 0.0)
    assert (chaos.answer, chaos.reason) == ("refused", "class CH is not served")
    for qtype in ("AXFR", "IXFR", "OPT", "TKEY", "MAILB"):
        meta = _decide(judge, "allowed.example", qtype)
        assert (meta.answer, meta.reason) == ("refused", f"type {qtype} is not served")
    assert _decide(judge, "allowed.example", "ANY").answer == "forward"
    binary = judge.decide(_q(dns.name.Name([b"a b", b"allowed", b"example", b""])), 0.0)
    assert (binary.answer, binary.inspector) == ("refused", "dns-tunnel")
    # An escaped dot must not make a single label look like a name under an entry.
    dotted = judge.decide(_q(dns.name.Name([b"allowed.example", b""])), 0.0)
    assert dotted.answer == "refused"


def test_a_protected_value_is_refused_wherever_the_name_points() -> None:
    judge = QueryJudge(cage_config(), values=FakeValues("canary:OPENAI_API_KEY"))
    for name in ("secret.allowed.example", "secret.evil.example"):
        decision = _decide(judge, name)
        assert (decision.answer, decision.inspector) == ("refused", "dns-values")
        assert decision.rules == ("canary:OPENAI_API_KEY",)
        assert decision.reason == "the name carries a protected value (canary OPENAI_API_KEY)"
    record = judge.record(_q("secret.x.allowed.example"), "10.0.0.5", decision, "REFUSED", 0)
    assert record.qname == "<redacted>.allowed.example" and record.rules == (decision.rules)
    record = judge.record(_q("secret.evil.example"), "10.0.0.5", decision, "REFUSED", 0)
    assert record.qname == "<redacted>"


def test_unreadable_fingerprints_fail_closed_only_for_names_that_would_leave() -> None:
    judge = QueryJudge(cage_config(), values=FakeValues(broken=True))
    servfail = _decide(judge, "api.allowed.example")
    assert (servfail.answer, servfail.verdict, servfail.inspector) == (
        "servfail",
        "block",
        "dns-values",
    )
    assert "/run/names.json cannot be read" in servfail.reason
    assert _decide(judge, "evil.example").answer == "sinkhole"


def test_tunnel_is_flagged_and_forwarded_by_default() -> None:
    judge = QueryJudge(cage_config())
    decision = _decide(judge, f"{HEX_LABEL}.evil.workers.dev", "TXT")
    assert (decision.answer, decision.verdict, decision.inspector) == (
        "forward",
        "flag",
        "dns-tunnel",
    )
    assert decision.reason.startswith("possible DNS tunnel in evil.workers.dev: encoded-looking")
    assert decision.newly_blocked is None and not judge.blocked_zones


def test_tunnel_action_block_refuses_the_first_query_and_the_zone() -> None:
    judge = QueryJudge(cage_config(dns={"tunnel_action": "block"}))
    first = _decide(judge, f"{HEX_LABEL}.evil.workers.dev", "TXT")
    assert (first.answer, first.newly_blocked, first.stop) == ("refused", "evil.workers.dev", None)
    later = _decide(judge, "www.evil.workers.dev")
    assert (later.answer, later.reason) == (
        "refused",
        "zone evil.workers.dev blocked after DNS tunnel detection",
    )
    assert _decide(judge, "ok.workers.dev").answer == "forward"
    record = judge.record(_q(f"{HEX_LABEL}.evil.workers.dev"), "10.0.0.5", first, "REFUSED", 0)
    assert record.extra == {"rcode": "REFUSED", "blocked_zone": "evil.workers.dev"}


def test_too_many_blocked_zones_stops_dns() -> None:
    judge = QueryJudge(cage_config(dns={"tunnel_action": "block", "max_blocked_zones": 2}))
    for zone in ("a", "b"):
        assert _decide(judge, f"{HEX_LABEL}.{zone}.workers.dev").stop is None
    third = _decide(judge, f"{HEX_LABEL}.c.workers.dev")
    assert third.answer == "refused" and isinstance(third.stop, TooManyBlockedZones)
    assert judge.blocked_zones == {"a.workers.dev", "b.workers.dev"}


def test_budgets_count_per_list_entry_and_spare_names_already_seen() -> None:
    judge = QueryJudge(cage_config(dns={"max_unique_subdomains": 10, "unique_window": 60}))
    names = [f"x.z{i}.workers.dev" for i in range(11)]  # a new tunnel zone each
    answers = [_decide(judge, name, now=1.0).answer for name in names]
    assert answers == ["forward"] * 10 + ["refused"]
    spent = _decide(judge, names[-1], now=2.0)
    assert (spent.inspector, spent.reason) == (
        "dns-budget",
        "budget of 10 distinct names under workers.dev within 60s spent",
    )
    assert _decide(judge, names[0], now=2.0).answer == "forward"
    assert _decide(judge, "new.allowed.example", now=2.0).answer == "forward"
    assert _decide(judge, names[-1], now=62.5).answer == "forward"  # the window moved on


def test_blocklist_budget_zone_is_the_last_two_labels() -> None:
    judge = QueryJudge(cage_config(domains={"block": []}, dns={"max_unique_subdomains": 10}))
    answers = [_decide(judge, f"n{i}.attacker.example").answer for i in range(11)]
    assert answers[-1] == "refused"
    assert _decide(judge, "n0.other.example").answer == "forward"


def test_reconfigure_keeps_blocked_zones_and_spent_budgets() -> None:
    judge = QueryJudge(cage_config(dns={"max_unique_subdomains": 10}), ["evil.workers.dev"])
    for i in range(10):
        _decide(judge, f"n{i}.allowed.example")
    judge.reconfigure(
        cage_config(
            dns={"max_unique_subdomains": 10},
            domains={"allow": ["allowed.example", "workers.dev", "new.example"]},
        )
    )
    assert _decide(judge, "n10.allowed.example").answer == "refused"
    assert _decide(judge, "x.evil.workers.dev").answer == "refused"
    assert _decide(judge, "x.new.example").answer == "forward"
    judge.reconfigure(cage_config(dns={"max_unique_subdomains": 20}))
    assert _decide(judge, "n10.allowed.example").answer == "forward"  # new limits: new budgets


def test_record_of_local_and_forwarded_answers() -> None:
    judge = QueryJudge(cage_config())
    forward = _decide(judge, "api.allowed.example")
    record = judge.record(_q("api.allowed.example"), "10.89.0.5", forward, None, None)
    assert (record.kind, record.verdict, record.answers, record.extra) == ("dns", "allow", None, {})
    assert (record.cage, record.client, record.qname, record.qtype) == (
        "dnstest",
        "10.89.0.5",
        "api.allowed.example",
        "A",
    )
    sink = _decide(judge, "evil.example")
    record = judge.record(_q("Evil.Example"), "10.89.0.5", sink, "NOERROR", 1)
    assert (record.qname, record.answers, record.extra) == (
        "evil.example",
        1,
        {"rcode": "NOERROR", "sinkhole": True},
    )


def _learning(**overrides: object) -> QueryJudge:
    domains = {"allow": ["allowed.example", "workers.dev"], "enforcement": "learn"}
    return QueryJudge(cage_config(domains=domains, **overrides))


@pytest.mark.parametrize("qtype", ["A", "AAAA", "TXT", "MX"])
def test_learn_mode_forwards_a_refused_name_as_would_block(qtype: str) -> None:
    decision = _decide(_learning(), "pypi.org", qtype)
    assert (decision.answer, decision.verdict, decision.would_block) == ("forward", "flag", True)
    assert decision.inspector == "dns-domains"
    record = _learning().record(_q("pypi.org", qtype), "10.0.0.5", decision, None, None)
    assert record.learn == "would-block" and record.verdict == "flag"


def test_learn_mode_leaves_listed_names_alone() -> None:
    decision = _decide(_learning(), "api.allowed.example")
    assert (decision.answer, decision.verdict, decision.would_block) == ("forward", "allow", False)


def test_learn_mode_still_refuses_tunnel_shaped_names() -> None:
    judge = _learning()
    tunnel = _decide(judge, f"{HEX_LABEL}.evil.example", "TXT")
    assert (tunnel.answer, tunnel.verdict, tunnel.inspector) == ("refused", "block", "dns-tunnel")
    assert not tunnel.would_block and "learn mode" in tunnel.reason
    odd = judge.decide(_q(dns.name.from_text("a\\000b.evil.example")), 0.0)
    assert (odd.answer, odd.inspector) == ("refused", "dns-tunnel")


def test_learn_mode_still_refuses_protected_values() -> None:
    judge = QueryJudge(_learning()._config, values=FakeValues("injected:KEY"))
    decision = _decide(judge, "secret.pypi.org")
    assert (decision.answer, decision.inspector) == ("refused", "dns-values")


def test_learn_mode_refuses_internal_addresses_in_answers() -> None:
    judge = _learning(network={"allow_cidrs": ["100.64.0.0/10"]})
    query = dns.message.make_query("pypi.org", "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("pypi.org.", 60, "IN", "A", "151.101.0.223"))
    assert judge.answer_refusal(reply) is None
    reply.answer.append(dns.rrset.from_text("pypi.org.", 60, "IN", "A", "100.64.0.1"))
    assert judge.answer_refusal(reply) is None  # allow_cidrs lifts it, as in the proxy
    reply.additional.append(dns.rrset.from_text("x.pypi.org.", 60, "IN", "AAAA", "fd00::1"))
    refusal = judge.answer_refusal(reply)
    assert refusal is not None and (refusal.answer, refusal.inspector) == ("refused", "dns-answer")
    assert "fd00::1" in refusal.reason


def test_learn_mode_refuses_internal_address_hints() -> None:
    judge = _learning()
    reply = dns.message.make_response(dns.message.make_query("pypi.org", "HTTPS"))
    reply.answer.append(
        dns.rrset.from_text("pypi.org.", 60, "IN", "HTTPS", "1 . alpn=h2 ipv4hint=151.101.0.223")
    )
    assert judge.answer_refusal(reply) is None
    reply.answer.append(
        dns.rrset.from_text("pypi.org.", 60, "IN", "HTTPS", "2 . ipv6hint=2a04:4e42::223,::1")
    )
    refusal = judge.answer_refusal(reply)
    assert refusal is not None and "::1 is a loopback address" in refusal.reason
