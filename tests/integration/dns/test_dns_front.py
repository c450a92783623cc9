"""The front of `agentcage dns run`: only the question leaves, and only after its audit line."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.edns
import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest
from tests.support.dns_sidecar import RunningSidecar, addresses, rcode, wait_for, write_config
from tests.support.fake_dns import ANY_V4, FakeDns

pytestmark = pytest.mark.integration

Start = Callable[..., RunningSidecar]


SMUGGLED = {
    "option": dns.edns.GenericOption(65001, b"exfil-option"),
    "client-subnet": dns.edns.ECSOption("10.66.77.0", 24),
    "additional": dns.rrset.from_text("x.attacker.example.", 60, "IN", "TXT", '"exfil-additional"'),
    "authority": dns.rrset.from_text("y.attacker.example.", 60, "IN", "TXT", '"exfil-authority"'),
}


@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("kind", list(SMUGGLED))
def test_only_the_question_reaches_the_upstream(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start, kind: str, tcp: bool
) -> None:
    # Finding: EDNS options and additional records were forwarded as the agent sent them.
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    item = SMUGGLED[kind]
    options = [item] if isinstance(item, dns.edns.Option) else []
    query = dns.message.make_query("EdNs.Allowed.Example", "A", use_edns=0, options=options)
    if kind in ("additional", "authority"):
        getattr(query, kind).append(item)
    ask = dns.query.tcp if tcp else dns.query.udp
    reply = ask(query, "127.0.0.1", port=sidecar.port, timeout=3)
    assert (rcode(reply), addresses(reply), reply.id) == ("NOERROR", [ANY_V4], query.id)
    assert reply.question[0].name == query.question[0].name  # the agent's own spelling back
    assert reply.options == ()
    (wire,) = upstream.wires
    sent = dns.message.from_wire(wire)
    assert not {option.otype for option in sent.options} & {65001, dns.edns.OptionType.ECS}
    assert (sent.additional, sent.authority, sent.answer) == ([], [], [])
    for marker in (b"exfil", b"attacker", bytes([10, 66, 77])):
        assert marker not in wire
    # A fresh query: our id, and the name in lower case (its case could carry bits too).
    assert sent.id != query.id
    assert sent.question[0].name.to_text() == "edns.allowed.example."


def _raw(port: int, data: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(4096)
        except TimeoutError:
            return None


def _question(name: str) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return labels + b"\x00" + struct.pack(">HH", 1, 1)


def test_malformed_and_multi_question_queries_get_formerr(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    two = struct.pack(">HHHHHH", 0x1234, 0x0100, 2, 0, 0, 0)
    two += _question("one.allowed.example") + _question("two.allowed.example")
    cut = struct.pack(">HHHHHH", 0x4321, 0x0100, 1, 0, 0, 0) + _question("x.allowed.example")[:7]
    for data, ident in ((two, 0x1234), (cut, 0x4321)):
        reply = dns.message.from_wire(_raw(sidecar.port, data) or b"")
        assert (reply.id, dns.rcode.to_text(reply.rcode())) == (ident, "FORMERR")
    assert _raw(sidecar.port, b"\x00\x01") is None  # not even a header: dropped
    assert upstream.wires == []
    lines = wait_for(lambda: [r for r in sidecar.records() if r["inspector"] == "dns-wire"])
    assert lines[0]["reason"] == "2 questions" and lines[0]["extra"] == {"rcode": "FORMERR"}


def test_an_unwritable_audit_log_forwards_nothing(tmp_path: Path, upstream: FakeDns) -> None:
    # /dev/full opens for appending and fails every write with ENOSPC: a full disk.
    sidecar = RunningSidecar(write_config(tmp_path / "cage.yaml", upstream), Path("/dev/full"))
    try:
        assert rcode(sidecar.ask("full.allowed.example")) == "SERVFAIL"
        sidecar.proc.wait(timeout=10)  # then DNS stops: fail closed
    finally:
        code, err = sidecar.stop()
    assert upstream.wires == []
    assert code == 1
    assert "cannot write the DNS audit log" in err and "nothing forwarded" in err


def test_after_sigkill_every_query_that_left_has_its_line(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    names = [f"k{i}.allowed.example" for i in range(95)]  # within the budget of 100 a zone

    def ask(name: str) -> None:
        with contextlib.suppress(OSError, dns.exception.Timeout):  # killed meanwhile
            sidecar.ask(name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        pending = [pool.submit(ask, name) for name in names]
        wait_for(lambda: len(upstream.wires) >= 30)
        sidecar.proc.kill()  # mid-stream, queries in flight
        for future in pending:
            future.result()
    sidecar.proc.wait(timeout=10)
    left = {name for name, _ in upstream.queries}
    audited = {record["qname"] for record in sidecar.records()}
    assert len(left) >= 30 and left <= audited


def test_the_name_budget_blocks_130_names_in_one_zone(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    # Finding: 130 unique names under one allowed zone were flagged but all forwarded.
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    names = [f"u{i}.allowed.example" for i in range(130)]
    codes = [rcode(sidecar.ask(name)) for name in names]
    assert codes == ["NOERROR"] * 100 + ["REFUSED"] * 30
    assert [name for name, _ in upstream.queries] == names[:100]


def test_rotating_the_zone_label_does_not_escape_the_budget(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    # Finding: 150 queries rotating a label were flagged but all forwarded. Each name has
    # its own tunnel zone (`r<i>.workers.dev`); the budget counts the allowlist entry.
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    names = [f"data.r{i}.workers.dev" for i in range(150)]
    codes = [rcode(sidecar.ask(name, "TXT")) for name in names]
    assert codes.count("NOERROR") == 100 and codes[100:] == ["REFUSED"] * 50
    assert len(upstream.queries) == 100
    refused = sidecar.record_for(names[-1], "TXT")
    assert (refused["verdict"], refused["inspector"]) == ("block", "dns-budget")


def test_the_label_budget_blocks_names_with_many_new_labels(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    names = [f"a{i}.b{i}.c{i}.workers.dev" for i in range(70)]  # 3 new labels a name
    codes = [rcode(sidecar.ask(name)) for name in names]
    assert codes == ["NOERROR"] * 66 + ["REFUSED"] * 4  # 66 * 3 = 198 of 200 labels
    reason = sidecar.record_for(names[-1])["reason"]
    assert reason == "budget of 200 distinct labels under workers.dev within 3600s spent"
    assert rcode(sidecar.ask("a1.b1.c1.workers.dev")) == "NOERROR"
    assert addresses(sidecar.ask("other.allowed.example")) == [ANY_V4]  # other zones fine
