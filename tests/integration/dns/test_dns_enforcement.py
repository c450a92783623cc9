"""Real dnsmasq, rendered by us, against a recording fake upstream: what leaves and what not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.support.dns_sidecar import RunningSidecar, addresses, rcode, write_config
from tests.support.fake_dns import ANY_V4, ANY_V6, FakeDns

pytestmark = pytest.mark.integration

Start = Callable[..., RunningSidecar]


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningSidecar, FakeDns]]:
    # One sidecar for the read-only tests; each test uses names no other test asks for.
    tmp = tmp_path_factory.mktemp("allowlist")
    upstream = FakeDns.answering_anything().start()
    sidecar = RunningSidecar(write_config(tmp / "cage.yaml", upstream), tmp / "audit.jsonl")
    yield sidecar, upstream
    sidecar.stop()
    upstream.stop()


@pytest.fixture
def allowlist(shared: tuple[RunningSidecar, FakeDns]) -> RunningSidecar:
    return shared[0]


@pytest.fixture
def upstream(shared: tuple[RunningSidecar, FakeDns]) -> FakeDns:
    return shared[1]


def test_banner(allowlist: RunningSidecar) -> None:
    assert allowlist.banner == f"listening on 127.0.0.1:{allowlist.port}"


@pytest.mark.parametrize("tcp", [False, True])
def test_allowlisted_names_are_forwarded(
    allowlist: RunningSidecar, upstream: FakeDns, tcp: bool
) -> None:
    proto = "tcp" if tcp else "udp"
    a = allowlist.ask(f"api{proto}.allowed.example", "A", tcp=tcp)
    aaaa = allowlist.ask(f"v6{proto}.allowed.example", "AAAA", tcp=tcp)
    txt = allowlist.ask(f"_dmarc.m{proto}.allowed.example", "TXT", tcp=tcp)
    assert (rcode(a), addresses(a)) == ("NOERROR", [ANY_V4])
    assert (rcode(aaaa), addresses(aaaa)) == ("NOERROR", [ANY_V6])
    assert addresses(txt) == ['"from-upstream"']
    expected = {
        (f"api{proto}.allowed.example", "A"),
        (f"v6{proto}.allowed.example", "AAAA"),
        (f"_dmarc.m{proto}.allowed.example", "TXT"),
    }
    assert expected <= set(upstream.queries)


def test_other_names_are_sinkholed_and_never_forwarded(
    allowlist: RunningSidecar, upstream: FakeDns
) -> None:
    a = allowlist.ask("sinkhole.example", "A")
    aaaa = allowlist.ask("www.notallowed.example", "AAAA")
    lookalike = allowlist.ask("notallowed.example", "A")  # not a subdomain of allowed.example
    assert (rcode(a), addresses(a)) == ("NOERROR", ["198.51.100.1"])
    assert (rcode(aaaa), addresses(aaaa)) == ("NOERROR", ["2001:db8::1"])
    assert addresses(lookalike) == ["198.51.100.1"]
    assert not upstream.saw("sinkhole.example") and not upstream.saw("notallowed.example")


@pytest.mark.parametrize("tcp", [False, True])
def test_other_types_to_other_names_are_refused_and_never_forwarded(
    allowlist: RunningSidecar, upstream: FakeDns, tcp: bool
) -> None:
    for qtype in ("TXT", "MX", "NULL", "CNAME", "SRV", "CAA", "HTTPS", "PTR", "NS", "SOA"):
        reply = allowlist.ask(f"secret-data-{qtype.lower()}.attacker.example", qtype, tcp=tcp)
        assert (qtype, rcode(reply), reply.answer) == (qtype, "REFUSED", [])
    assert not upstream.saw("attacker.example")


@pytest.mark.parametrize("tcp", [False, True])
def test_any_to_other_names_is_refused(
    allowlist: RunningSidecar, upstream: FakeDns, tcp: bool
) -> None:
    # Finding: dnsmasq answered ANY from its sinkhole entries; the front refuses it.
    reply = allowlist.ask(f"any-query-{int(tcp)}.attacker2.example", "ANY", tcp=tcp)
    assert (rcode(reply), reply.answer) == ("REFUSED", [])
    record = allowlist.record_for(f"any-query-{int(tcp)}.attacker2.example", "ANY")
    assert (record["verdict"], record["extra"]) == ("block", {"rcode": "REFUSED"})
    assert not upstream.saw("attacker2.example")


def test_audit_lines_for_every_kind_of_answer(allowlist: RunningSidecar) -> None:
    allowlist.ask("audit.allowed.example", "A")
    allowlist.ask("audit-evil.example", "A")
    allowlist.ask("audit-data.attacker.example", "TXT")
    allowed = allowlist.record_for("audit.allowed.example")
    sinkholed = allowlist.record_for("audit-evil.example")
    refused = allowlist.record_for("audit-data.attacker.example", "TXT")
    # Written before the query left: the answer is not known yet.
    assert (allowed["verdict"], allowed["answers"], allowed["kind"]) == ("allow", None, "dns")
    assert allowed["reason"] == "in allowlist (allowed.example)"
    assert allowed["inspector"] == "dns-domains" and "extra" not in allowed
    assert allowed["client"] == "127.0.0.1" and allowed["cage"] == "dnstest" and allowed["v"] == 1
    assert (sinkholed["verdict"], sinkholed["reason"]) == ("block", "not in allowlist")
    assert sinkholed["extra"]["sinkhole"] is True
    assert (refused["verdict"], refused["answers"], refused["extra"]["rcode"]) == (
        "block",
        0,
        "REFUSED",
    )


def test_default_logging_writes_blocked_queries_only(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream, logging={}))
    sidecar.ask("api.allowed.example", "A")
    sidecar.ask("evil.example", "A")
    sidecar.record_for("evil.example")
    sidecar.stop()  # flushes everything still pending
    assert [r["qname"] for r in sidecar.records()] == ["evil.example"]


def test_logging_none_writes_nothing_for_plain_queries(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    config = write_config(tmp_path / "cage.yaml", upstream, logging={"dns_queries": "none"})
    sidecar = start_sidecar(config)
    assert addresses(sidecar.ask("evil.example", "A")) == ["198.51.100.1"]
    sidecar.stop()
    assert sidecar.records() == []


def test_blocklist_mode_is_the_mirror_image(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    config = write_config(
        tmp_path / "cage.yaml", upstream, domains={"block": ["pastebin.com", "evil.example"]}
    )
    sidecar = start_sidecar(config)
    assert addresses(sidecar.ask("pastebin.com", "A")) == ["198.51.100.1"]
    assert addresses(sidecar.ask("x.evil.example", "AAAA")) == ["2001:db8::1"]
    for qtype in ("TXT", "MX", "NULL", "ANY"):
        reply = sidecar.ask("data.pastebin.com", qtype)
        assert (qtype, rcode(reply), reply.answer) == (qtype, "REFUSED", [])
    assert not upstream.saw("pastebin.com") and not upstream.saw("evil.example")
    assert addresses(sidecar.ask("anything.example", "A")) == [ANY_V4]
    assert addresses(sidecar.ask("anything.example", "TXT")) == ['"from-upstream"']
    blocked = sidecar.record_for("pastebin.com")
    assert (blocked["verdict"], blocked["reason"]) == ("block", "in blocklist (pastebin.com)")
    assert sidecar.record_for("anything.example")["verdict"] == "allow"


def test_concurrent_queries_each_get_one_correct_audit_line(
    allowlist: RunningSidecar, upstream: FakeDns
) -> None:
    # Interleaved log lines of many clients must still group into one line per query.
    cases = [
        (f"c{i}.allowed.example", "A", "allow", None)
        if i % 3 == 0
        else (f"c{i}.sink.example", "A", "block", 1)
        if i % 3 == 1
        else (f"c{i}.refused.example", "TXT", "block", 0)
        for i in range(150)  # 50 allowed names: within the budget of 100 names a zone
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda case: allowlist.ask(case[0], case[1]), cases))
    for name, qtype, verdict, answers in cases:
        record = allowlist.record_for(name, qtype)
        assert (name, record["verdict"], record["answers"]) == (name, verdict, answers)
    names = [r["qname"] for r in allowlist.records() if r["qname"].startswith("c")]
    assert len(names) == len(set(names)) == len(cases)
