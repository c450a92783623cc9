"""An audit line written out field by field is the text json.dumps makes of the record."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.audit.record import MAX_PATH, WOULD_BLOCK, AuditRecord, now_iso

# Any text: non-ASCII, controls, quotes, lone surrogates (mitmproxy's surrogate escapes).
TEXT = st.text(st.characters(codec=None), max_size=40)
NUMBER = st.integers(-(2**70), 2**70)
FLOAT = st.floats(allow_nan=True, allow_infinity=True)
# What `extra` holds in practice (status, error, direction) and what it might.
EXTRA_VALUE = st.one_of(TEXT, NUMBER, FLOAT, st.booleans(), st.none(), st.lists(NUMBER, max_size=3))
EXTRA: st.SearchStrategy[Any] = st.dictionaries(TEXT, EXTRA_VALUE, max_size=4) | st.dictionaries(
    st.integers(0, 9), st.integers(), max_size=3
)


@st.composite
def records(draw: st.DrawFn) -> AuditRecord:
    number: st.SearchStrategy[Any] = (
        st.one_of(NUMBER, st.booleans(), FLOAT) if draw(st.booleans()) else NUMBER
    )
    fields: dict[str, Any] = {
        name: draw(TEXT)
        for name in (
            "cage",
            "flow_id",
            "client",
            "method",
            "scheme",
            "host",
            "inspector",
            "reason",
            "severity",
            "time",
        )
    }
    return AuditRecord(
        kind=draw(st.sampled_from(["http", "response", "websocket", "connection", "flow"])),
        verdict=draw(st.sampled_from(["allow", "flag", "block"])),
        port=draw(number),
        bytes_in=draw(number),
        bytes_out=draw(number),
        duration_ms=draw(st.one_of(FLOAT, NUMBER, st.booleans())),
        path=draw(st.text(max_size=MAX_PATH + 20) | TEXT),
        rules=tuple(draw(st.lists(TEXT, max_size=3))),
        extra=draw(EXTRA),
        learn=draw(st.sampled_from(["", WOULD_BLOCK])),
        **fields,
    )


@settings(max_examples=600)
@given(records())
def test_a_line_is_the_text_json_dumps_makes(line: AuditRecord) -> None:
    assert line.to_json() == line.encoded()


@pytest.mark.parametrize(
    "line",
    [
        AuditRecord(kind="http", verdict="allow", port=True),
        AuditRecord(kind="http", verdict="allow", duration_ms=math.nan),
        AuditRecord(kind="http", verdict="allow", rules=["a", "b"]),  # type: ignore[arg-type]
        AuditRecord(kind="http", verdict="allow", host=None),  # type: ignore[arg-type]
        AuditRecord(kind="http", verdict="allow", extra={"n": 1.5, "k": [1]}),
        AuditRecord(kind="http", verdict="allow", extra=[("k", 1)]),  # type: ignore[arg-type]
        AuditRecord(kind="dns", verdict="block", qname="a.example", answers=None),
    ],
)
def test_values_of_other_types_are_left_to_json(line: AuditRecord) -> None:
    assert line.to_json() == line.encoded()


def test_a_value_json_cannot_write_still_raises() -> None:
    line = AuditRecord(kind="http", verdict="allow", extra={"x": object()})
    with pytest.raises(TypeError):
        line.to_json()


def test_the_bench_closing_line_is_unchanged() -> None:
    line = AuditRecord(
        kind="response",
        verdict="allow",
        cage="bench",
        flow_id="0b8d0a57-8d6e-4a83-9d0a-8b8e0c4e7d1f",
        client="127.0.0.1:40000",
        method="POST",
        scheme="https",
        host="127.0.0.3",
        port=443,
        path="/reflect",
        bytes_in=1024,
        bytes_out=1024,
        duration_ms=2.125,
        extra={"status": 200},
        time="2026-12-06T18:00:00.000Z",
    )
    assert json.loads(line.to_json()) == {
        "bytes_in": 1024,
        "bytes_out": 1024,
        "cage": "bench",
        "client": "127.0.0.1:40000",
        "duration_ms": 2.125,
        "extra": {"status": 200},
        "flow_id": "0b8d0a57-8d6e-4a83-9d0a-8b8e0c4e7d1f",
        "host": "127.0.0.3",
        "inspector": "",
        "kind": "response",
        "method": "POST",
        "path": "/reflect",
        "port": 443,
        "reason": "",
        "rules": [],
        "scheme": "https",
        "severity": "",
        "time": "2026-12-06T18:00:00.000Z",
        "v": 1,
        "verdict": "allow",
    }
    assert line.to_json() == line.encoded()


# 1970 to 2200, to the nanosecond.
@given(st.integers(0, 7_258_118_400 * 10**9 - 1))
def test_the_time_is_written_as_datetime_writes_it(ns: int) -> None:
    expected = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)).isoformat(
        timespec="milliseconds"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time_ns", lambda: ns)
        assert now_iso() == expected.replace("+00:00", "Z")
        assert now_iso() == expected.replace("+00:00", "Z")  # the second's prefix reused
