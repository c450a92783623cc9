"""Learn mode through a real `dns run`: names the list refuses are forwarded and audited
`learn: would-block`; tunnel-shaped names and internal answers are still refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import pytest
from tests.support.dns_sidecar import RunningSidecar, addresses, rcode, write_config
from tests.support.fake_dns import ANY_V4, ANY_V6, FakeDns
from tests.support.proxy import run_cli

pytestmark = pytest.mark.integration

HEX_LABEL = "3f2504e04f8911d39a0c0305e82c3301aabbccdd0011"
LEARN = {"allow": ["allowed.example"], "enforcement": "learn"}
# The fake's documentation addresses stand in for public ones; every other special
# range stays refused.
DOC_RANGES = ["203.0.113.0/24", "2001:db8::/32"]


@pytest.fixture
def upstream() -> Iterator[FakeDns]:
    records = {
        "pypi.org": [ANY_V4, ANY_V6],
        "files.pythonhosted.org": [ANY_V4],
        "api.allowed.example": [ANY_V4],
        "rebind.example": ["10.1.2.3"],
        "metadata.example": ["169.254.169.254"],
        "mixed.example": [ANY_V4, "fd00::7"],
    }
    with FakeDns(records) as server:
        server.set_rdata("hints.example", "HTTPS", "1 . alpn=h2 ipv4hint=203.0.113.7,10.0.0.9")
        yield server


@pytest.fixture
def sidecar(tmp_path: Path, upstream: FakeDns) -> Iterator[RunningSidecar]:
    config = write_config(
        tmp_path / "cage.yaml",
        upstream,
        domains=LEARN,
        network={"allow_cidrs": DOC_RANGES},
        logging={"dns_queries": "none"},  # would-block lines are written all the same
    )
    running = RunningSidecar(config, tmp_path / "dns.jsonl")
    yield running
    running.stop()


def test_the_banner_says_learn_mode(sidecar: RunningSidecar) -> None:
    assert sidecar.banner.startswith(f"listening on 127.0.0.1:{sidecar.port}; LEARN MODE")


@pytest.mark.parametrize("tcp", [False, True])
def test_a_refused_name_is_forwarded_and_audited_would_block(
    sidecar: RunningSidecar, upstream: FakeDns, tcp: bool
) -> None:
    a = sidecar.ask("pypi.org", "A", tcp=tcp)
    aaaa = sidecar.ask("pypi.org", "AAAA", tcp=tcp)
    assert (rcode(a), addresses(a)) == ("NOERROR", [ANY_V4])
    assert (rcode(aaaa), addresses(aaaa)) == ("NOERROR", [ANY_V6])
    assert upstream.saw("pypi.org")
    line = sidecar.record_for("pypi.org", "A")
    assert (line["verdict"], line["inspector"], line["learn"]) == (
        "flag",
        "dns-domains",
        "would-block",
    )


def test_listed_names_are_untouched(sidecar: RunningSidecar) -> None:
    assert addresses(sidecar.ask("api.allowed.example")) == [ANY_V4]
    # Allowed lines follow `logging.dns_queries` (none here); would-block ones do not.
    assert addresses(sidecar.ask("files.pythonhosted.org")) == [ANY_V4]
    sidecar.record_for("files.pythonhosted.org")
    assert not [r for r in sidecar.records() if r["qname"] == "api.allowed.example"]


@pytest.mark.parametrize(
    ("name", "qtype", "address"),
    [
        ("rebind.example", "A", "10.1.2.3"),
        ("metadata.example", "A", "169.254.169.254"),
        ("mixed.example", "AAAA", "fd00::7"),
        ("hints.example", "HTTPS", "10.0.0.9"),
    ],
)
def test_an_answer_with_an_internal_address_is_refused(
    sidecar: RunningSidecar, name: str, qtype: str, address: str
) -> None:
    answer = sidecar.ask(name, qtype)
    assert (rcode(answer), addresses(answer)) == ("REFUSED", [])
    lines = [r for r in sidecar.records() if r["qname"] == name]
    assert [(r["verdict"], r["inspector"]) for r in lines] == [
        ("flag", "dns-domains"),
        ("block", "dns-answer"),
    ]
    assert address in lines[1]["reason"] and "learn" not in lines[1]


def test_tunnel_shaped_names_are_still_refused(sidecar: RunningSidecar, upstream: FakeDns) -> None:
    name = f"{HEX_LABEL}.t.attacker.example"
    assert rcode(sidecar.ask(name, "TXT")) == "REFUSED"
    line = sidecar.record_for(name, "TXT")
    assert (line["verdict"], line["inspector"]) == ("block", "dns-tunnel")
    binary = dns.name.Name([b"data with spaces\x00", b"attacker", b"example", b""])
    reply = dns.query.udp(
        dns.message.make_query(binary, "A"), "127.0.0.1", port=sidecar.port, timeout=3
    )
    assert rcode(reply) == "REFUSED"
    assert not upstream.saw("attacker.example")


def test_domain_suggest_reads_the_sidecar_s_log(sidecar: RunningSidecar) -> None:
    sidecar.ask("pypi.org", "A")
    sidecar.ask("files.pythonhosted.org", "A")
    sidecar.ask("rebind.example", "A")  # its answer refused: of no use to the agent
    sidecar.record_for("rebind.example")
    shown = run_cli("domain", "suggest", "--file", str(sidecar.audit_log))
    assert shown.returncode == 0, shown.stderr
    entries = [line.strip()[2:] for line in shown.stdout.splitlines() if line.startswith("    - ")]
    assert entries == ["pypi.org", "files.pythonhosted.org"]
    assert "    # pythonhosted.org: 0 requests, 1 DNS query\n" in shown.stdout
