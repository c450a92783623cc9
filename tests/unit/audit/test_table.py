"""The audit table: rows in decision order, each with the status its exchange ended with."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentcage.audit.reading import Line
from agentcage.audit.selection import Selection
from agentcage.audit.table import StatusJoin, cells, format_row, header


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _line(**record: Any) -> Line:
    record.setdefault("time", "2026-11-27T06:02:11.827Z")
    return Line(json.dumps(record), record)


def test_rows_wait_for_their_status_and_leave_in_decision_order() -> None:
    join = StatusJoin(Selection.of())
    join.add(_line(kind="http", verdict="allow", flow_id="a", path="/slow"), now=0.0)
    join.add(_line(kind="http", verdict="block", flow_id="b", path="/no"), now=0.0)
    join.add(_line(kind="http", verdict="allow", flow_id="c", path="/fast"), now=0.0)
    join.add(_line(kind="response", verdict="allow", flow_id="c", extra={"status": 201}))
    assert join.ready() == []  # /slow is first and unanswered
    join.add(_line(kind="response", verdict="allow", flow_id="a", extra={"error": "reset"}))
    rows = join.ready()
    assert [(r["path"], r["status"]) for r in rows] == [
        ("/slow", "error"),
        ("/no", ""),
        ("/fast", "201"),
    ]


def test_a_held_row_goes_out_after_the_hold_and_a_refused_response_is_a_row() -> None:
    join = StatusJoin(Selection.of(blocked=True))
    join.add(_line(kind="http", verdict="allow", flow_id="a", path="/a"), now=10.0)
    assert join.ready(now=10.5) == []  # not selected: allowed
    join.add(_line(kind="http", verdict="flag", flow_id="f", path="/f"), now=10.0)
    refused = _line(kind="response", verdict="block", flow_id="a", inspector="scrub", path="/a")
    join.add(refused, now=10.2)
    assert [r["path"] for r in join.ready(now=10.5)] == ["/a"]  # /f is not selected either
    join = StatusJoin(Selection.of())
    join.add(_line(kind="http", verdict="allow", flow_id="s", path="/s"), now=10.0)
    assert join.ready(now=10.9) == []
    assert [(r["path"], r["status"]) for r in join.ready(now=11.0)] == [("/s", "")]


def test_too_many_held_rows_are_let_out_unanswered() -> None:
    join = StatusJoin(Selection.of(), hold_rows=2)
    for flow in "abc":
        join.add(_line(kind="http", verdict="allow", flow_id=flow, path=f"/{flow}"))
    assert [r["path"] for r in join.ready()] == ["/a"]
    assert [r["path"] for r in join.rest()] == ["/b", "/c"]


def test_cells_for_each_kind_of_line() -> None:
    http = {
        "kind": "http",
        "verdict": "allow",
        "method": "GET",
        "scheme": "https",
        "host": "a.example",
        "port": 443,
        "path": "/p",
        "status": "200",
    }
    dns = {
        "kind": "dns",
        "verdict": "block",
        "qname": "x.example",
        "qtype": "TXT",
        "inspector": "dns-domains",
        "extra": {"rcode": "REFUSED"},
        "reason": "not in allowlist",
    }
    ws = {
        "kind": "websocket",
        "verdict": "block",
        "method": "GET",
        "scheme": "https",
        "host": "a.example",
        "port": 8443,
        "extra": {"direction": "to_server", "frame": "ping"},
    }
    forwarded = {"kind": "dns", "verdict": "allow", "qname": "ok.example", "qtype": "A"}
    stamp = {"time": "2026-11-27T06:02:11.827Z"}
    assert cells({**http, **stamp})[:7] == [
        "2026-11-27 06:02:11+00:00",
        "allow",
        "",
        "GET",
        "a.example",
        "/p",
        "200",
    ]
    assert cells(dns)[1:] == [
        "block",
        "dns-domains",
        "dns/TXT",
        "x.example",
        "",
        "REFUSED",
        "not in allowlist",
    ]
    assert cells(ws)[3:5] == ["ws> ping", "a.example:8443"]
    assert cells(forwarded)[6] == "forwarded"


def test_long_cells_are_cut_but_the_reason_never_is() -> None:
    reason = "r" * 300
    line = format_row(["t", "block", "i", "GET", "h" * 100, "/" + "p" * 100, "", reason])
    assert line.endswith(" " + reason)
    assert "h" * 27 + "…" in line and "h" * 28 not in line
    assert header().split() == [
        "TIME",
        "VERDICT",
        "INSPECTOR",
        "METHOD",
        "HOST",
        "PATH",
        "STATUS",
        "REASON",
    ]
    assert os.environ["TZ"] == "UTC"


def test_refused_flows_show_their_protocol_and_destination() -> None:
    flow = {"kind": "flow", "verdict": "block", "inspector": "deny", "scheme": "udp"}
    assert cells({**flow, "host": "203.0.113.7", "port": 123})[1:5] == [
        "block",
        "deny",
        "udp",
        "203.0.113.7:123",
    ]
    summary = {"kind": "flow", "verdict": "block", "client": "10.213.0.46", "port": 0}
    assert cells(summary)[3:5] == ["flow", "10.213.0.46"]


def test_the_time_is_local_with_its_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        cell = cells({"kind": "http", "time": "2026-11-27T06:02:11.827Z"})[0]
    finally:
        monkeypatch.undo()
        time.tzset()
    assert cell == "2026-11-27 11:32:11+05:30"
