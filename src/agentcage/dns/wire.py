"""DNS messages at the front: the agent's query parsed, and everything we send or answer.

Pure functions over dnspython messages. Only the question of an agent's query ever
goes on: `upstream_query` builds a fresh message from it (our id, lower-case name,
EDNS0 with our buffer size and no option), so EDNS options, flags and any record the
agent put in the other sections stay behind. Answers go back with the agent's id and
question, truncated (TC) to what the agent's transport can take.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from agentcage.dns.render import SINKHOLE_V4, SINKHOLE_V6

# The EDNS buffer size we advertise and accept from dnsmasq (the 2020 DNS flag day value).
OUR_PAYLOAD = 1232
PLAIN_UDP = 512  # what a client without EDNS can take over UDP
TCP_LIMIT = 65535
_HEADER = struct.Struct(">HHHHHH")
_HOSTNAME_LABEL = re.compile(rb"[A-Za-z0-9_-]{1,63}|\*")


@dataclass(frozen=True, slots=True)
class Question:
    """The one question of a query, as the judge sees it."""

    name: str  # lower case, no trailing dot, bytes no hostname has escaped (`\\032`)
    hostname: bool  # every label is letters, digits, `-` and `_` (or a lone `*`)
    rdtype: dns.rdatatype.RdataType
    rdclass: dns.rdataclass.RdataClass
    wire_name: dns.name.Name  # lower case, for the upstream query

    @property
    def qtype(self) -> str:
        return dns.rdatatype.to_text(self.rdtype)

    @property
    def labels(self) -> list[str]:
        return self.name.split(".") if self.name else []


class Rejected(Exception):
    """A message answered without being judged (FORMERR, NOTIMP, BADVERS) or dropped."""

    def __init__(self, reason: str, reply: bytes | None, rcode: int = dns.rcode.FORMERR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply  # None: send nothing back
        self.rcode = dns.rcode.to_text(rcode) if reply is not None else None  # type: ignore[arg-type]


def parse(data: bytes) -> tuple[dns.message.Message, Question]:
    """The agent's query and its question; `Rejected` for anything else."""
    if len(data) < _HEADER.size:
        raise Rejected("shorter than a DNS header", None)
    _ident, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & dns.flags.QR:
        raise Rejected("a response, not a query", None)  # never answer answers: no loops
    opcode = (flags >> 11) & 0xF
    if opcode != dns.opcode.QUERY:
        raise Rejected(
            f"opcode {opcode} is not served",
            header_reply(data, dns.rcode.NOTIMP),
            dns.rcode.NOTIMP,
        )
    if qdcount != 1:
        raise Rejected(f"{qdcount} questions", header_reply(data, dns.rcode.FORMERR))
    try:
        query = dns.message.from_wire(data)
    # Hostile bytes: whatever the parser trips over makes the message malformed.
    except Exception as exc:
        reason = f"malformed query ({type(exc).__name__})"
        raise Rejected(reason, header_reply(data, dns.rcode.FORMERR)) from exc
    if query.edns > 0:
        reply = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        reply.set_rcode(dns.rcode.BADVERS)
        raise Rejected(f"EDNS version {query.edns}", reply.to_wire(), dns.rcode.BADVERS)
    return query, question_of(query.question[0])


def question_of(rrset: dns.rrset.RRset) -> Question:
    labels = rrset.name.labels[:-1]  # absolute: drop the root label
    lowered = dns.name.Name([label.lower() for label in rrset.name.labels])
    text = lowered.to_text(omit_final_dot=True)
    return Question(
        name="" if text == "." else text,
        hostname=all(_HOSTNAME_LABEL.fullmatch(label) for label in labels),
        rdtype=rrset.rdtype,
        rdclass=rrset.rdclass,
        wire_name=lowered,
    )


def header_reply(data: bytes, rcode: int) -> bytes:
    """A bare reply (no sections) to a query we could not or would not parse."""
    ident, flags = _HEADER.unpack_from(data)[:2]
    reply_flags = dns.flags.QR | (flags & (0x7800 | dns.flags.RD)) | dns.flags.RA | rcode
    return _HEADER.pack(ident, reply_flags, 0, 0, 0, 0)


def reply_limit(query: dns.message.Message, tcp: bool) -> int:
    """The largest answer the agent's transport takes; larger ones are truncated."""
    if tcp:
        return TCP_LIMIT
    return max(PLAIN_UDP, query.payload) if query.edns >= 0 else PLAIN_UDP


def to_wire(message: dns.message.Message, limit: int) -> bytes:
    return message.to_wire(max_size=limit, prefer_truncation=True)


def _response(query: dns.message.Message, rcode: int) -> dns.message.Message:
    response = dns.message.make_response(query, recursion_available=True, our_payload=OUR_PAYLOAD)
    usable = rcode if query.edns >= 0 or rcode <= 15 else dns.rcode.SERVFAIL
    response.set_rcode(dns.rcode.Rcode.make(usable))
    return response


def local_answer(query: dns.message.Message, rcode: int) -> dns.message.Message:
    """An answer without records: REFUSED, SERVFAIL, ..."""
    return _response(query, rcode)


def sinkhole_answer(query: dns.message.Message) -> dns.message.Message:
    """The documentation address for an A or AAAA question, TTL 0."""
    response = _response(query, dns.rcode.NOERROR)
    question = query.question[0]
    address = SINKHOLE_V4 if question.rdtype == dns.rdatatype.A else SINKHOLE_V6
    rdtype = dns.rdatatype.to_text(question.rdtype)
    response.answer.append(dns.rrset.from_text(question.name, 0, "IN", rdtype, str(address)))
    return response


# Questions whose answer would carry an address: the A answer is the proxy's, and the
# rest are empty so no client learns a real address or an ECH key (which hides the SNI).
_STEERED = frozenset({dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.HTTPS, dns.rdatatype.SVCB})
STEERED_TTL = 30


def steerable(question: Question) -> bool:
    return question.rdtype in _STEERED


def steered_answer(
    query: dns.message.Message, address: ipaddress.IPv4Address
) -> dns.message.Message:
    """`address` for an A question; NOERROR without records for AAAA, HTTPS and SVCB."""
    response = _response(query, dns.rcode.NOERROR)
    question = query.question[0]
    if question.rdtype == dns.rdatatype.A:
        response.answer.append(
            dns.rrset.from_text(question.name, STEERED_TTL, "IN", "A", str(address))
        )
    return response


def upstream_query(question: Question) -> dns.message.Message:
    """A fresh query holding only the question: our id, flags and EDNS, no options."""
    return dns.message.make_query(
        question.wire_name,
        question.rdtype,
        question.rdclass,
        use_edns=0,
        payload=OUR_PAYLOAD,
    )


def relay(query: dns.message.Message, reply: dns.message.Message) -> dns.message.Message:
    """dnsmasq's answer to our fresh query, returned as the answer to the agent's."""
    response = _response(query, reply.rcode())
    response.flags |= reply.flags & dns.flags.TC  # the agent retries over TCP
    response.answer = list(reply.answer)
    response.authority = list(reply.authority)
    response.additional = list(reply.additional)
    return response


def reply_to(query: dns.message.Message, data: bytes) -> dns.message.Message:
    """Parse dnsmasq's reply to `query`; `ValueError` (or a `DNSException`) if it is not one."""
    reply = dns.message.from_wire(data)
    if not query.is_response(reply):
        raise ValueError("the reply does not answer the query")
    return reply
