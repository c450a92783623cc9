"""Selecting audit records: verdicts, names and below, inspectors, durations and RFC 3339."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from agentcage.audit.selection import Selection, parse_when
from agentcage.errors import ConfigError

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [("90s", 90), ("15m", 900), ("2h30m", 9000), ("1d", 86400), ("1w", 604800), ("1.5h", 5400)],
)
def test_durations_count_back_from_now(text: str, back: int) -> None:
    assert parse_when(text, NOW) == NOW - timedelta(seconds=back)


def test_rfc3339_times_keep_their_offset() -> None:
    assert parse_when("2026-11-27T06:00:00Z", NOW) == datetime(2026, 11, 27, 6, tzinfo=UTC)
    plus_one = timezone(timedelta(hours=1))
    assert parse_when("2026-11-27 07:00:00+01:00", NOW) == datetime(
        2026, 11, 27, 7, tzinfo=plus_one
    )


@pytest.mark.parametrize("text", ["yesterday", "2026-11-27T06:00:00", "15", "m15", ""])
def test_anything_else_is_a_bad_argument(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a time"):
        parse_when(text, NOW)


def test_a_selection_needs_every_criterion() -> None:
    blocked_dns = {
        "kind": "dns",
        "verdict": "block",
        "qname": "x.Evil.example",
        "inspector": "dns-domains",
        "time": "2026-11-27T11:30:00.000Z",
    }
    assert Selection.of().matches(blocked_dns)
    assert Selection.of(blocked=True, hosts=["evil.example."]).matches(blocked_dns)
    assert not Selection.of(hosts=["vil.example"]).matches(blocked_dns)
    assert not Selection.of(flagged=True).matches(blocked_dns)
    assert Selection.of(flagged=True, blocked=True).matches(blocked_dns)
    assert not Selection.of(inspectors=["domain"]).matches(blocked_dns)
    assert Selection.of(since=parse_when("1h", NOW)).matches(blocked_dns)
    assert not Selection.of(since=parse_when("10m", NOW)).matches(blocked_dns)
    assert not Selection.of(until=parse_when("1h", NOW)).matches(blocked_dns)
    assert not Selection.of(since=NOW - timedelta(days=1)).matches({"verdict": "block"})
