from __future__ import annotations

from agentcage.dns.querylog import NO_REPLY_AFTER, QUIET_AFTER, LogLine, QueryAssembler, parse_line

# Lines as dnsmasq 2.90 writes them with log-queries=extra and log-facility=-.
FORWARDED = [
    "dnsmasq[6228]: 1 127.0.0.1/47693 query[A] allowed.com from 127.0.0.1",
    "dnsmasq[6228]: 1 127.0.0.1/47693 forwarded allowed.com to 127.0.0.1#15353",
    "dnsmasq[6228]: 1 127.0.0.1/47693 reply allowed.com is <CNAME>",
    "dnsmasq[6228]: 1 127.0.0.1/47693 reply edge.allowed.com is 203.0.113.7",
    "dnsmasq[6228]: 1 127.0.0.1/47693 reply edge.allowed.com is 203.0.113.8",
]
SINKHOLED = "dnsmasq[6228]: 4 127.0.0.1/36306 config other.example is 198.51.100.1"
NEXT_QUERY = "dnsmasq[6228]: 4 127.0.0.1/36306 query[A] other.example from 127.0.0.1"
REFUSED = "dnsmasq[6228]: 6 127.0.0.1/52607 config error is REFUSED (EDE: not ready)"


def _lines(*texts: str) -> list[LogLine]:
    out = []
    for text in texts:
        parsed = parse_line(text)
        assert isinstance(parsed, LogLine)
        out.append(parsed)
    return out


def test_parse_query_line() -> None:
    (line,) = _lines("dnsmasq[1]: 12 ::1/5353 query[TXT] secret-data.attacker.example from ::1")
    assert line == LogLine(12, "::1", "query", "TXT", "secret-data.attacker.example", "")


def test_parse_other_lines() -> None:
    assert parse_line("dnsmasq[1]: started, version 2.90 cachesize 1000") == (
        "started, version 2.90 cachesize 1000"
    )
    assert parse_line("not dnsmasq at all") is None
    syslog = parse_line("Nov 27 06:00:00 dnsmasq[9]: 3 10.0.0.2/1 query[AAAA] a.b from 10.0.0.2")
    assert isinstance(syslog, LogLine) and syslog.qtype == "AAAA"
    (unknown_type,) = _lines("dnsmasq[1]: 3 10.0.0.2/1 query[type=65534] a.b from 10.0.0.2")
    assert unknown_type.qtype == "type=65534"


def test_forwarded_query_is_finished_by_the_next_querys_line() -> None:
    assembler = QueryAssembler()
    finished = []
    opened = []
    for line in _lines(*FORWARDED, NEXT_QUERY):
        new, done = assembler.feed(line, now=1.0)
        finished += done
        if new is not None:
            opened.append(new.qname)
    assert opened == ["allowed.com", "other.example"]
    (query,) = finished
    assert query.forwarded and query.upstream == "127.0.0.1#15353"
    assert query.answers == 3 and query.rcode == "NOERROR"


def test_interleaved_queries_wait_for_their_reply() -> None:
    assembler = QueryAssembler()
    lines = _lines(
        FORWARDED[0],
        FORWARDED[1],
        "dnsmasq[1]: 2 127.0.0.1/2 query[A] other.example from 127.0.0.1",
        "dnsmasq[1]: 2 127.0.0.1/2 config other.example is 198.51.100.1",
        FORWARDED[3],
        "dnsmasq[1]: 3 127.0.0.1/3 query[A] x.example from 127.0.0.1",
    )
    finished = []
    for line in lines:
        finished += assembler.feed(line, now=1.0)[1]
    assert [q.qname for q in finished] == ["other.example", "allowed.com"]
    assert finished[0].source == "config" and not finished[0].forwarded


def test_refused_and_quiet_expiry() -> None:
    assembler = QueryAssembler()
    for line in _lines(
        "dnsmasq[1]: 6 127.0.0.1/52607 query[TXT] secret.attacker.example from 127.0.0.1", REFUSED
    ):
        assembler.feed(line, now=5.0)
    assert assembler.expire(5.0 + QUIET_AFTER / 2) == []
    (query,) = assembler.expire(5.0 + QUIET_AFTER)
    assert query.rcode == "REFUSED" and query.answers == 0 and not query.forwarded


def test_unanswered_forward_expires_after_the_no_reply_timeout() -> None:
    assembler = QueryAssembler()
    for line in _lines(*FORWARDED[:2]):
        assembler.feed(line, now=0.0)
    assert assembler.expire(NO_REPLY_AFTER - 1) == []
    (query,) = assembler.expire(NO_REPLY_AFTER)
    assert query.forwarded and not query.answered


def test_lines_of_queries_started_before_reading_are_ignored() -> None:
    assembler = QueryAssembler()
    (line,) = _lines(FORWARDED[2])
    assert assembler.feed(line, now=0.0) == (None, [])
    assert assembler.drain() == []


def test_unprintable_names_parse() -> None:
    lines = _lines(
        "dnsmasq[1]: 7 127.0.0.1/9 query[A] <name unprintable> from 127.0.0.1",
        "dnsmasq[1]: 7 127.0.0.1/9 forwarded <name unprintable> to 127.0.0.1#53",
        "dnsmasq[1]: 7 127.0.0.1/9 reply <name unprintable> is 203.0.113.7",
    )
    assert {line.name for line in lines} == {"<name unprintable>"}
    assert lines[2].value == "203.0.113.7"
