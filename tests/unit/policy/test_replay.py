"""Policy replay: what is re-decided from a request's audit line, and what is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcage.config.schema import CageConfig
from agentcage.policy.replay import Replayer, RequestRedecider, load_candidate


def candidate(tmp_path: Path, allow: str = "ok.example") -> CageConfig:
    path = tmp_path / "candidate.yaml"
    path.write_text(
        "name: replay\n"
        "container: {image: docker.io/library/python:3.12-slim}\n"
        f"domains: {{allow: [{allow}]}}\n"
        "secret_injection:\n"
        "  - {env: API_KEY, inject_to: [ok.example], places: [headers, query]}\n"
        "rate_limit: {reads: {per_second: 1, burst: 1}}\n"
    )
    return load_candidate(path)


def _http(host: str, verdict: str = "allow", **more: Any) -> dict[str, Any]:
    record = {"kind": "http", "verdict": verdict, "method": "GET", "scheme": "https"}
    return {**record, "host": host, "port": 443, "path": "/", **more}


def _replayer(tmp_path: Path, allow: str = "ok.example") -> Replayer:
    return Replayer({"http": RequestRedecider(candidate(tmp_path, allow), tmp_path)})


def test_tighter_verdicts_come_from_what_the_line_holds(tmp_path: Path) -> None:
    result = _replayer(tmp_path).replay(
        [
            _http("ok.example", path="/?key={{API_KEY}}"),  # toward its host: allowed
            _http("other.example"),
        ]
        + [_http("ok.example", path="/x")] * 50  # far past the reads budget: not replayed
    )
    assert result.replayed == 52
    assert [(f.direction, f.record["host"], f.inspector) for f in result.flips] == [
        ("allow -> block", "other.example", "domain")
    ]
    assert result.new_blocks == 1


def test_a_placeholder_in_the_url_toward_another_host_is_re_decided(tmp_path: Path) -> None:
    replayer = _replayer(tmp_path, "ok.example, else.example")
    result = replayer.replay([_http("else.example", path="/?k={{API_KEY}}")])
    assert [(f.after, f.inspector) for f in result.flips] == [("block", "secret-injection")]


def test_looser_verdicts_are_believed_only_from_checks_that_saw_nothing_more(
    tmp_path: Path,
) -> None:
    result = _replayer(tmp_path).replay(
        [
            _http("ok.example", "block", inspector="leaks"),
            _http("ok.example", "flag", inspector="entropy"),
            _http("ok.example", "block", inspector="domain", reason="was not listed"),
        ]
    )
    assert result.kept == {"leaks": 1, "entropy": 1}
    assert [(f.direction, f.inspector, f.reason) for f in result.flips] == [
        ("block -> allow", "domain", "was not listed")
    ]


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({"kind": "response", "verdict": "allow"}, "response lines (how an exchange ended)"),
        (
            {"kind": "websocket", "verdict": "block"},
            "WebSocket messages (payloads are not in the log)",
        ),
        (
            _http("ok.example", "block", inspector="egress"),
            "decisions of the proxy's own checks (egress)",
        ),
        (_http("ok.example", method=""), "requests without a recorded method or host"),
        ({"kind": "http", "verdict": "maybe"}, "lines of an unknown kind or verdict"),
        ({"kind": "dns", "verdict": "allow"}, "lines of an unknown kind or verdict"),
    ],
)
def test_what_the_log_cannot_re_decide_is_counted_as_not_replayed(
    tmp_path: Path, record: dict[str, Any], why: str
) -> None:
    result = _replayer(tmp_path).replay([record])
    assert (result.replayed, dict(result.skipped), result.flips) == (0, {why: 1}, [])
