"""Which audit records to show: by verdict, host, inspector and time.

Times are given as a duration back from now (`90s`, `15m`, `2h30m`, `1d`) or as an
RFC 3339 date-time with its offset (`2026-11-27T06:00:00Z`, `...+01:00`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agentcage.audit.reading import Record
from agentcage.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
TIME_HELP = "a duration back from now (30s, 15m, 2h30m, 1d) or an RFC 3339 time with offset"


def parse_when(text: str, now: datetime) -> datetime:
    """The moment `text` names; `ConfigError` (a bad argument) if it names none."""
    value = text.strip().lower()
    if _DURATION.fullmatch(value):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"{text!r} is not a time", hint=f"give {TIME_HELP}, e.g. 2026-11-27T06:00:00Z"
        )
    return moment


def record_time(record: Record) -> datetime | None:
    try:
        return datetime.fromisoformat(str(record.get("time", "")))
    except ValueError:
        return None


def _under(name: str, entries: tuple[str, ...]) -> bool:
    name = name.lower().rstrip(".")
    return any(name == entry or name.endswith("." + entry) for entry in entries)


@dataclass(frozen=True)
class Selection:
    """Records pass if they match every given criterion; an empty selection passes all.

    `verdicts`: any of them. `hosts`: the record's host (or DNS name) is one of them
    or below one (`example.com` selects `api.example.com`). `inspectors`: exact names.
    """

    verdicts: frozenset[str] = frozenset()
    hosts: tuple[str, ...] = ()
    inspectors: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(
        cls,
        *,
        blocked: bool = False,
        flagged: bool = False,
        hosts: Iterable[str] = (),
        inspectors: Iterable[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Selection:
        verdicts = {"block"} if blocked else set()
        if flagged:
            verdicts.add("flag")
        return cls(
            verdicts=frozenset(verdicts),
            hosts=tuple(h.lower().rstrip(".") for h in hosts),
            inspectors=frozenset(inspectors),
            since=since,
            until=until,
        )

    def matches(self, record: Record) -> bool:
        if self.verdicts and record.get("verdict") not in self.verdicts:
            return False
        if self.inspectors and record.get("inspector") not in self.inspectors:
            return False
        if self.hosts:
            name = str(record.get("host") or record.get("qname") or "")
            if not _under(name, self.hosts):
                return False
        if self.since is not None or self.until is not None:
            when = record_time(record)
            if when is None:
                return False
            if self.since is not None and when < self.since:
                return False
            if self.until is not None and when > self.until:
                return False
        return True
