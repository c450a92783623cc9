"""dnsmasq's own query log (`log-queries=extra`) turned into one record per query.

dnsmasq writes several lines per query, tagged with a serial number and the client:

    dnsmasq[7]: 4 10.89.0.5/40211 query[A] api.example.com from 10.89.0.5
    dnsmasq[7]: 4 10.89.0.5/40211 forwarded api.example.com to 10.0.0.1#53
    dnsmasq[7]: 4 10.89.0.5/40211 reply api.example.com is 203.0.113.7
    dnsmasq[7]: 5 10.89.0.5/40212 config evil.example is 198.51.100.1
    dnsmasq[7]: 6 10.89.0.5/40213 config error is REFUSED (EDE: not ready)

The answer lines of one reply are written in one burst (dnsmasq is single-threaded),
so a query is complete once it has an answer and a line about anything else arrives,
or after a short quiet period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PREFIX = re.compile(r"^(?:\S+ +\d+ \d\d:\d\d:\d\d )?dnsmasq(?:\[\d+\])?: (?P<body>.*)$")
_QUERY = re.compile(r"^(?P<serial>\d+) (?P<client>\S+)/(?P<port>\d+) (?P<verb>\S+) (?P<rest>.*)$")
_QTYPE = re.compile(r"^query\[(?P<qtype>[^\]]+)\]$")
_IS = re.compile(r"^(?P<name><name unprintable>|\S+) is (?P<value>.*)$")
# What dnsmasq logs instead of a name with bytes no hostname has (space, NUL, ...).
UNPRINTABLE = "<name unprintable>"
_NO_ANSWER = ("NODATA", "NXDOMAIN", "NODATA-IPv4", "NODATA-IPv6")
# A forwarded query whose upstream never answers produces no further lines.
NO_REPLY_AFTER = 10.0
QUIET_AFTER = 0.2


@dataclass(frozen=True, slots=True)
class LogLine:
    """One per-query line: `verb` is `query`, `forwarded`, `reply`, `cached`, `config`, ..."""

    serial: int
    client: str
    verb: str
    qtype: str
    name: str
    value: str


def parse_line(text: str) -> LogLine | str | None:
    """A `LogLine`, the message of a line that is not about a query, or None (not dnsmasq)."""
    prefix = _PREFIX.match(text.rstrip("\n"))
    if prefix is None:
        return None
    body = prefix.group("body")
    match = _QUERY.match(body)
    if match is None:
        return body
    verb, rest, qtype = match.group("verb"), match.group("rest"), ""
    typed = _QTYPE.match(verb)
    if typed is not None:
        verb, qtype = "query", typed.group("qtype")
        name, value = rest.split(" from ", 1)[0], ""
    elif verb == "forwarded":
        name, _, value = rest.partition(" to ")
    else:
        is_match = _IS.match(rest)
        name, value = (is_match.group("name"), is_match.group("value")) if is_match else (rest, "")
    return LogLine(int(match.group("serial")), match.group("client"), verb, qtype, name, value)


@dataclass(slots=True)
class Query:
    """Everything dnsmasq logged about one query."""

    serial: int
    client: str
    qname: str
    qtype: str
    started: float
    upstream: str = ""
    source: str = ""  # "reply", "cached" or "config": who answered
    values: list[str] = field(default_factory=list)
    last_seen: float = 0.0

    @property
    def answered(self) -> bool:
        return bool(self.source)

    @property
    def forwarded(self) -> bool:
        return bool(self.upstream) or self.source in ("reply", "cached")

    @property
    def answers(self) -> int:
        return sum(1 for value in self.values if not _is_empty(value))

    @property
    def rcode(self) -> str:
        """REFUSED, NXDOMAIN, SERVFAIL, NODATA or NOERROR, as far as the log tells."""
        for value in self.values:
            word = value.split(" ", 1)[0]
            if word in ("REFUSED", "SERVFAIL", "NXDOMAIN") or word.startswith("NODATA"):
                return "NODATA" if word.startswith("NODATA") else word
        return "NOERROR" if self.answered else ""


def _is_empty(value: str) -> bool:
    word = value.split(" ", 1)[0]
    return word in _NO_ANSWER or word in ("REFUSED", "SERVFAIL") or word == "duplicate"


class QueryAssembler:
    """Feeds on log lines, hands out finished `Query` objects."""

    def __init__(self) -> None:
        self._open: dict[int, Query] = {}

    def feed(self, line: LogLine, now: float) -> tuple[Query | None, list[Query]]:
        """(the query this line opened, if any; queries finished by this line)."""
        done = [q for serial, q in self._open.items() if serial != line.serial and q.answered]
        for query in done:
            del self._open[query.serial]
        opened: Query | None = None
        current = self._open.get(line.serial)
        if line.verb == "query":
            if current is not None:  # serial reused: close the old one as it is
                done.append(current)
            client = line.client.split("%")[0]
            current = opened = Query(line.serial, client, line.name, line.qtype, now)
            self._open[line.serial] = current
        elif current is None:
            return None, done  # the start of this query came before we were reading
        current.last_seen = now
        if line.verb == "forwarded":
            current.upstream = line.value
        elif line.verb in ("reply", "cached", "cached-stale", "config"):
            current.source = "cached" if line.verb.startswith("cached") else line.verb
            current.values.append(line.value)
        return opened, done

    def expire(self, now: float) -> list[Query]:
        """Queries that are finished by time: answered and quiet, or never answered."""
        done = [
            q
            for q in self._open.values()
            if (q.answered and now - q.last_seen >= QUIET_AFTER)
            or now - q.started >= NO_REPLY_AFTER
        ]
        for query in done:
            del self._open[query.serial]
        return done

    def drain(self) -> list[Query]:
        done = list(self._open.values())
        self._open.clear()
        return done
