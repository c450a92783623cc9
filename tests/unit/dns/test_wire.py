"""The front's message handling: what is parsed, what is refused, what goes on, what comes back."""

from __future__ import annotations

import ipaddress
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from agentcage.dns import wire


def _rcode(data: bytes | None) -> str:
    assert data is not None
    return dns.rcode.to_text(dns.message.from_wire(data).rcode())


def test_a_plain_query_is_parsed_to_its_question() -> None:
    query, question = wire.parse(dns.message.make_query("Api.Allowed.Example.", "TXT").to_wire())
    assert (question.name, question.qtype, question.hostname) == (
        "api.allowed.example",
        "TXT",
        True,
    )
    assert question.labels == ["api", "allowed", "example"]
    assert query.question[0].name.to_text() == "Api.Allowed.Example."


@pytest.mark.parametrize(
    ("data", "reason", "rcode"),
    [
        (b"\x12\x34", "shorter than a DNS header", None),
        (struct.pack(">HHHHHH", 1, 0x8100, 1, 0, 0, 0), "a response, not a query", None),
        (struct.pack(">HHHHHH", 1, 0x2100, 1, 0, 0, 0), "opcode 4 is not served", "NOTIMP"),
        (struct.pack(">HHHHHH", 1, 0x0100, 0, 0, 0, 0), "0 questions", "FORMERR"),
        (struct.pack(">HHHHHH", 1, 0x0100, 2, 0, 0, 0), "2 questions", "FORMERR"),
        (struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x05ab", "malformed", "FORMERR"),
    ],
)
def test_what_is_not_one_plain_query_is_rejected(
    data: bytes, reason: str, rcode: str | None
) -> None:
    with pytest.raises(wire.Rejected) as err:
        wire.parse(data)
    assert err.value.reason.startswith(reason) and err.value.rcode == rcode
    if rcode is None:
        assert err.value.reply is None
    else:
        reply = dns.message.from_wire(err.value.reply or b"")
        assert (reply.id, dns.rcode.to_text(reply.rcode())) == (1, rcode)
        assert reply.flags & dns.flags.QR


def test_trailing_bytes_and_tsig_without_a_key_are_malformed() -> None:
    plain = dns.message.make_query("a.example", "A").to_wire()
    with pytest.raises(wire.Rejected, match="malformed"):
        wire.parse(plain + b"junk")
    signed = dns.message.make_query("a.example", "A")
    signed.use_tsig({dns.name.from_text("k."): b"0123456789abcdef"}, dns.name.from_text("k."))
    with pytest.raises(wire.Rejected, match="malformed"):
        wire.parse(signed.to_wire())


def test_a_newer_edns_version_gets_badvers() -> None:
    query = dns.message.make_query("a.example", "A", use_edns=1)
    with pytest.raises(wire.Rejected) as err:
        wire.parse(query.to_wire())
    assert err.value.rcode == "BADVERS"
    assert dns.message.from_wire(err.value.reply or b"").rcode() == dns.rcode.BADVERS


def test_labels_no_hostname_has_are_marked() -> None:
    for labels, hostname in (
        ([b"_dmarc", b"x-1", b"example"], True),
        ([b"*", b"example"], True),
        ([b"a b", b"example"], False),
        ([b"a.b", b"example"], False),
        ([b"\x00", b"example"], False),
        ([b"caf\xc3\xa9", b"example"], False),
    ):
        query = dns.message.make_query(dns.name.Name([*labels, b""]), "A")
        assert wire.parse(query.to_wire())[1].hostname is hostname, labels


def test_the_upstream_query_holds_the_question_alone() -> None:
    agent = dns.message.make_query(
        "MiXeD.Allowed.Example",
        "A",
        use_edns=0,
        want_dnssec=True,
        options=[dns.edns.GenericOption(65001, b"data"), dns.edns.ECSOption("10.0.0.0", 8)],
    )
    agent.additional.append(dns.rrset.from_text("x.example.", 1, "IN", "TXT", '"data"'))
    fresh = wire.upstream_query(wire.parse(agent.to_wire())[1])
    assert fresh.question[0].name.to_text() == "mixed.allowed.example."
    assert (fresh.options, fresh.additional, fresh.authority) == ((), [], [])
    assert fresh.edns == 0 and fresh.payload == wire.OUR_PAYLOAD
    assert not fresh.ednsflags & dns.flags.DO
    assert fresh.flags & dns.flags.RD


def test_the_relayed_answer_has_the_agents_id_and_question() -> None:
    agent = dns.message.make_query("Api.Allowed.Example", "A", use_edns=0, payload=4096)
    query, question = wire.parse(agent.to_wire())
    fresh = wire.upstream_query(question)
    upstream = dns.message.make_response(fresh)
    upstream.answer.append(
        dns.rrset.from_text(fresh.question[0].name, 60, "IN", "A", "203.0.113.7")
    )
    upstream.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(65002, b"x")])
    reply = wire.reply_to(fresh, upstream.to_wire())
    relayed = dns.message.from_wire(wire.to_wire(wire.relay(query, reply), 4096))
    assert relayed.id == agent.id and relayed.question == agent.question
    assert [rr.to_text() for rrset in relayed.answer for rr in rrset] == ["203.0.113.7"]
    assert relayed.options == () and relayed.flags & dns.flags.RA


def test_a_reply_to_another_query_is_not_accepted() -> None:
    first = wire.upstream_query(wire.parse(dns.message.make_query("a.example", "A").to_wire())[1])
    other = dns.message.make_query("b.example", "A")
    other.id = first.id
    with pytest.raises(ValueError):
        wire.reply_to(first, dns.message.make_response(other).to_wire())


def test_answers_are_truncated_to_what_the_transport_takes() -> None:
    plain = dns.message.make_query("big.example", "TXT")
    edns = dns.message.make_query("big.example", "TXT", use_edns=0, payload=4096)
    assert wire.reply_limit(plain, tcp=False) == 512
    assert wire.reply_limit(edns, tcp=False) == 4096
    assert wire.reply_limit(plain, tcp=True) == 65535
    big = wire.local_answer(plain, dns.rcode.NOERROR)
    big.answer.append(
        dns.rrset.from_text_list(
            "big.example.", 60, "IN", "TXT", [f'"{"x" * 200}{i}"' for i in range(10)]
        )
    )
    truncated = dns.message.from_wire(wire.to_wire(big, 512))
    assert truncated.flags & dns.flags.TC
    assert len(wire.to_wire(big, 65535)) > 2000


def test_local_answers() -> None:
    query = dns.message.make_query("Evil.Example", "AAAA")
    sink = wire.sinkhole_answer(query)
    assert [rr.to_text() for rrset in sink.answer for rr in rrset] == ["2001:db8::1"]
    assert sink.answer[0].ttl == 0 and sink.answer[0].name == query.question[0].name
    assert _rcode(wire.to_wire(wire.local_answer(query, dns.rcode.REFUSED), 512)) == "REFUSED"
    assert _rcode(wire.header_reply(query.to_wire(), dns.rcode.SERVFAIL)) == "SERVFAIL"


@pytest.mark.parametrize(
    ("qtype", "answers"),
    [("A", ["10.213.0.3"]), ("AAAA", []), ("HTTPS", []), ("SVCB", [])],
)
def test_a_steered_answer_carries_only_the_proxy_address(qtype: str, answers: list[str]) -> None:
    query, question = wire.parse(dns.message.make_query("api.allowed.example", qtype).to_wire())
    assert wire.steerable(question)
    response = wire.steered_answer(query, ipaddress.IPv4Address("10.213.0.3"))
    assert response.rcode() == dns.rcode.NOERROR
    assert [item.to_text() for rrset in response.answer for item in rrset] == answers
    assert all(rrset.ttl == wire.STEERED_TTL for rrset in response.answer)


@pytest.mark.parametrize("qtype", ["TXT", "MX", "CNAME", "SRV"])
def test_other_types_are_not_steered(qtype: str) -> None:
    _, question = wire.parse(dns.message.make_query("api.allowed.example", qtype).to_wire())
    assert not wire.steerable(question)
