from __future__ import annotations

from typing import Any

import pytest

from agentcage.dns.judge import QueryJudge, TooManyBlockedZones, UncontainedTunnel
from agentcage.dns.querylog import UNPRINTABLE, Query
from tests.unit.dns.builders import cage_config

HEX_LABEL = "3f2504e04f8911d39a0c0305e82c3301aabbccdd"


def _query(serial: int, qname: str, qtype: str = "A", **fields: Any) -> Query:
    return Query(serial, "10.89.0.5", qname, qtype, started=0.0, **fields)


def test_forwarded_query_is_allowed_with_its_upstream() -> None:
    judge = QueryJudge(cage_config())
    query = _query(
        1,
        "api.allowed.example",
        upstream="127.0.0.1#5300",
        source="reply",
        values=["203.0.113.7", "203.0.113.8"],
    )
    assert judge.observe(query, 0.0).signal is None
    record = judge.record(query)
    assert (record.verdict, record.answers, record.qtype) == ("allow", 2, "A")
    assert record.reason == "in allowlist (allowed.example)"
    assert record.extra == {"rcode": "NOERROR", "upstream": "127.0.0.1#5300"}
    assert record.kind == "dns" and record.cage == "dnstest" and record.client == "10.89.0.5"


def test_sinkholed_and_refused_queries_are_blocked() -> None:
    judge = QueryJudge(cage_config())
    sink = judge.record(_query(2, "evil.example", source="config", values=["198.51.100.1"]))
    assert (sink.verdict, sink.reason, sink.extra["sinkhole"]) == (
        "block",
        "not in allowlist",
        True,
    )
    refused = judge.record(
        _query(
            3,
            "secret.attacker.example",
            "TXT",
            source="config",
            values=["REFUSED (EDE: not ready)"],
        )
    )
    assert (refused.verdict, refused.answers, refused.extra) == ("block", 0, {"rcode": "REFUSED"})


def test_tunnel_is_flagged_not_blocked_by_default() -> None:
    judge = QueryJudge(cage_config())
    query = _query(4, f"{HEX_LABEL}.evil.workers.dev", "TXT")
    observation = judge.observe(query, 0.0)
    assert observation.signal is not None and observation.newly_blocked is None
    query.upstream, query.source, query.values = "127.0.0.1#5300", "reply", ["x"]
    record = judge.record(query)
    assert record.verdict == "flag" and record.inspector == "dns-tunnel"
    assert "evil.workers.dev" in record.reason and "blocked_zone" not in record.extra


def test_tunnel_action_block_blocks_the_zone_once() -> None:
    judge = QueryJudge(cage_config(dns={"tunnel_action": "block"}))
    first = judge.observe(_query(5, f"{HEX_LABEL}.evil.workers.dev"), 0.0)
    assert first.newly_blocked == "evil.workers.dev"
    assert judge.blocked_zones == {"evil.workers.dev"}
    # Later queries in the zone are refused by dnsmasq and explained as a tunnel block.
    later = _query(6, "www.evil.workers.dev", source="config", values=["REFUSED"])
    assert judge.observe(later, 0.0).signal is None
    record = judge.record(later)
    assert record.verdict == "block" and record.inspector == "dns-tunnel"
    assert record.reason == "zone evil.workers.dev blocked after DNS tunnel detection"
    assert judge.is_forwarded("ok.workers.dev")


def test_too_many_blocked_zones_fails_closed() -> None:
    judge = QueryJudge(cage_config(dns={"tunnel_action": "block", "max_blocked_zones": 2}))
    judge.observe(_query(1, f"{HEX_LABEL}.a.workers.dev"), 0.0)
    judge.observe(_query(2, f"{HEX_LABEL}.b.workers.dev"), 0.0)
    with pytest.raises(TooManyBlockedZones):
        judge.observe(_query(3, f"{HEX_LABEL}.c.workers.dev"), 0.0)


def test_blocklist_verdicts() -> None:
    judge = QueryJudge(cage_config(domains={"block": ["pastebin.com"]}))
    assert judge.is_forwarded("anything.example") and not judge.is_forwarded("x.pastebin.com")
    record = judge.record(_query(1, "x.pastebin.com", source="config", values=["198.51.100.1"]))
    assert (record.verdict, record.reason) == ("block", "in blocklist (pastebin.com)")
    # Tunnel detection applies to everything forwarded; the zone is the last labels.
    observation = judge.observe(_query(2, f"{HEX_LABEL}.t.attacker.example"), 0.0)
    assert observation.signal is not None and observation.signal.zone == "t.attacker.example"


def test_unanswered_forward_is_recorded_without_an_answer_count() -> None:
    judge = QueryJudge(cage_config())
    record = judge.record(_query(1, "allowed.example", upstream="127.0.0.1#5300"))
    assert record.verdict == "allow" and record.answers is None
    assert record.extra["result"] == "no reply logged"


def test_forwarded_binary_name_is_flagged_and_stops_dns_in_block_mode() -> None:
    query = _query(1, UNPRINTABLE, upstream="127.0.0.1#5300", source="reply", values=["x"])
    flagging = QueryJudge(cage_config())
    record = flagging.record(query)
    assert (record.verdict, record.inspector) == ("flag", "dns-tunnel")
    flagging.enforce(query)  # flag mode: keep serving
    with pytest.raises(UncontainedTunnel):
        QueryJudge(cage_config(dns={"tunnel_action": "block"})).enforce(query)
    # Not forwarded (sinkholed): nothing left the cage, nothing to stop.
    sinkholed = _query(2, UNPRINTABLE, source="config", values=["198.51.100.1"])
    QueryJudge(cage_config(dns={"tunnel_action": "block"})).enforce(sinkholed)
