"""Re-judging recorded DNS queries under a candidate config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcage.dns.rejudge import QueryRedecider
from agentcage.policy.replay import Replayer, ReplayResult, load_candidate


def _dns(qname: str, verdict: str = "allow", inspector: str = "dns-domains") -> dict[str, Any]:
    return {"kind": "dns", "verdict": verdict, "qname": qname, "qtype": "A", "inspector": inspector}


def _replay(tmp_path: Path, records: list[dict[str, Any]]) -> ReplayResult:
    path = tmp_path / "candidate.yaml"
    path.write_text(
        "name: replay\n"
        "container: {image: docker.io/library/python:3.12-slim}\n"
        "domains: {allow: [ok.example]}\n"
        "dns: {max_unique_subdomains: 10}\n"
    )
    return Replayer({"dns": QueryRedecider(load_candidate(path))}).replay(records)


def test_the_domain_list_and_tunnel_verdicts_are_re_decided_both_ways(tmp_path: Path) -> None:
    result = _replay(
        tmp_path,
        [
            _dns("ok.example", "block"),
            _dns("ok.example", "flag", "dns-tunnel"),
            _dns("evil.example"),
            # Far past the candidate's budget of 10 names: budgets are not replayed.
            *[_dns(f"n{n}.ok.example") for n in range(30)],
        ],
    )
    assert result.replayed == 33
    assert [(f.direction, f.record["qname"], f.inspector) for f in result.flips] == [
        ("block -> allow", "ok.example", "dns-domains"),
        ("flag -> allow", "ok.example", "dns-tunnel"),
        ("allow -> block", "evil.example", "dns-domains"),
    ]


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (
            _dns("<redacted>.ok.example", "block", "dns-values"),
            "DNS names carrying protected values (redacted in the log)",
        ),
        (
            _dns("a.ok.example", "block", "dns-budget"),
            "DNS budget decisions (they count queries the log may not hold)",
        ),
        (_dns("", "block", "dns-wire"), "DNS messages that were not queries"),
        (
            {**_dns("ok.example", "block"), "reason": "class CH is not served"},
            "DNS queries of a class other than IN (the class is not in the log)",
        ),
    ],
)
def test_what_the_log_cannot_re_judge_is_counted_as_not_replayed(
    tmp_path: Path, record: dict[str, Any], why: str
) -> None:
    result = _replay(tmp_path, [record])
    assert (result.replayed, dict(result.skipped), result.flips) == (0, {why: 1}, [])


def test_a_line_that_does_not_parse_is_a_block(tmp_path: Path) -> None:
    result = _replay(tmp_path, [{**_dns("ok.example"), "qtype": "NOPE"}])
    assert [(f.after, f.inspector) for f in result.flips] == [("block", "dns-wire")]
