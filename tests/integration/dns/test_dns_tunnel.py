"""Tunnel detection and budgets before forwarding: flag, block, and leave normal names alone."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.message
import dns.name
import dns.query
import pytest
from tests.support.dns_sidecar import RunningSidecar, addresses, free_port, rcode, write_config
from tests.support.fake_dns import ANY_V4, FakeDns

pytestmark = pytest.mark.integration

Start = Callable[..., RunningSidecar]
HEX_LABEL = "3f2504e04f8911d39a0c0305e82c3301aabbccdd0011"
NORMAL = [
    "d1a2b3c4d5e6f7.cloudfront.net",
    "my-bucket.s3.us-east-1.amazonaws.com",
    "k8s-default-myingres-1a2b3c4d5e-1234567890.us-east-1.elb.amazonaws.com",
    "sts.amazonaws.com",
    "registry-1.docker.io",
    "production.cloudflare.docker.com",
    "objects.githubusercontent.com",
    "_dmarc.cloudfront.net",
    "_acme-challenge.www.docker.io",
]


def _tunnel_names(count: int, zone: str) -> list[str]:
    rng = random.Random(3)
    return [
        f"{base64.b32encode(rng.randbytes(38)).decode().lower().rstrip('=')}.{zone}"
        for _ in range(count)
    ]


def _config(tmp_path: Path, upstream: FakeDns, **dns: object) -> Path:
    return write_config(
        tmp_path / "cage.yaml",
        upstream,
        domains={"allow": ["workers.dev", "cloudfront.net", "amazonaws.com", "docker.io",
                           "docker.com", "githubusercontent.com"]},
        dns=dns,
    )  # fmt: skip


def test_tunnel_is_flagged_and_normal_names_are_not(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(_config(tmp_path, upstream))
    for name in NORMAL:
        assert rcode(sidecar.ask(name, "A")) == "NOERROR"
    tunnel = f"{HEX_LABEL}.t.evil.workers.dev"
    assert addresses(sidecar.ask(tunnel, "TXT")) == ['"from-upstream"']  # flag only
    flagged = sidecar.record_for(tunnel, "TXT")
    assert (flagged["verdict"], flagged["inspector"]) == ("flag", "dns-tunnel")
    assert "possible DNS tunnel in evil.workers.dev" in flagged["reason"]
    for name in NORMAL:
        record = sidecar.record_for(name)
        assert (name, record["verdict"]) == (name, "allow")
    assert rcode(sidecar.ask(f"x.{tunnel}", "TXT")) == "NOERROR"  # still forwarded


def test_tunnel_action_block_refuses_the_zone_from_then_on(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(_config(tmp_path, upstream, tunnel_action="block"))
    # Finding: the query that triggered detection used to leave before the block.
    first = sidecar.ask(f"{HEX_LABEL}.evil.workers.dev", "TXT")
    assert (rcode(first), first.answer) == ("REFUSED", [])
    flagged = sidecar.record_for(f"{HEX_LABEL}.evil.workers.dev", "TXT")
    assert (flagged["verdict"], flagged["extra"]["blocked_zone"]) == ("block", "evil.workers.dev")
    for qtype in ("A", "AAAA", "TXT", "NULL"):
        reply = sidecar.ask("more-data.evil.workers.dev", qtype)
        assert (qtype, rcode(reply)) == (qtype, "REFUSED")
    assert not upstream.saw("evil.workers.dev")  # nothing ever reached the attacker's zone
    blocked = sidecar.record_for("more-data.evil.workers.dev", "NULL")
    assert blocked["verdict"] == "block" and blocked["inspector"] == "dns-tunnel"
    assert blocked["reason"] == "zone evil.workers.dev blocked after DNS tunnel detection"
    # The rest of the allowlisted domain still works.
    assert rcode(sidecar.ask("good.workers.dev", "A")) == "NOERROR"
    assert ("good.workers.dev", "A") in upstream.queries


def test_the_first_tunnel_query_never_leaves_even_back_to_back(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(_config(tmp_path, upstream, tunnel_action="block"))
    names = _tunnel_names(20, "burst.workers.dev")
    with ThreadPoolExecutor(max_workers=8) as pool:  # concurrent, as a tunnel client sends
        replies = list(pool.map(lambda name: sidecar.ask(name, "TXT"), names))
    assert {rcode(reply) for reply in replies} == {"REFUSED"}
    assert not upstream.saw("burst.workers.dev")


def test_the_name_budget_blocks_new_names_in_a_zone(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(_config(tmp_path, upstream, max_unique_subdomains=10))
    names = [f"chunk{i}.slow.workers.dev" for i in range(12)]  # short, low-entropy labels
    codes = [rcode(sidecar.ask(name, "A")) for name in names]
    assert codes == ["NOERROR"] * 10 + ["REFUSED"] * 2
    assert [name for name in names if upstream.saw(name)] == names[:10]
    refused = sidecar.record_for(names[-1])
    assert (refused["verdict"], refused["inspector"]) == ("block", "dns-budget")
    assert refused["reason"] == "budget of 10 distinct names under workers.dev within 3600s spent"
    assert rcode(sidecar.ask(names[0], "A")) == "NOERROR"  # names already seen keep working


def test_typical_tunnel_traffic_never_leaves(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(_config(tmp_path, upstream, tunnel_action="block"))
    names = _tunnel_names(20, "iodine.workers.dev")
    for name in names:
        sidecar.ask(name, "NULL")
    assert rcode(sidecar.ask("probe.iodine.workers.dev", "A")) == "REFUSED"
    assert not upstream.saw("iodine.workers.dev")


def test_blocklist_mode_blocks_a_tunnel_zone(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    config = write_config(
        tmp_path / "cage.yaml",
        upstream,
        domains={"block": ["pastebin.com"]},
        dns={"tunnel_action": "block"},
    )
    sidecar = start_sidecar(config)
    assert rcode(sidecar.ask(f"{HEX_LABEL}.t.attacker.example", "TXT")) == "REFUSED"
    flagged = sidecar.record_for(f"{HEX_LABEL}.t.attacker.example", "TXT")
    assert flagged["extra"]["blocked_zone"] == "t.attacker.example"
    assert rcode(sidecar.ask("probe.t.attacker.example", "A")) == "REFUSED"
    assert not upstream.saw("t.attacker.example")
    assert addresses(sidecar.ask("other.attacker.example", "A")) == [ANY_V4]


def _binary_name_query(sidecar: RunningSidecar) -> dns.message.Message:
    name = dns.name.Name([b"data with spaces\x00", b"allowed", b"example", b""])
    return dns.query.udp(
        dns.message.make_query(name, "A"), "127.0.0.1", port=sidecar.port, timeout=3
    )


@pytest.mark.parametrize("action", ["flag", "block"])
def test_binary_names_are_refused(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start, action: str
) -> None:
    config = write_config(tmp_path / "cage.yaml", upstream, dns={"tunnel_action": action})
    sidecar = start_sidecar(config)
    assert rcode(_binary_name_query(sidecar)) == "REFUSED"
    record = sidecar.record_for("data\\032with\\032spaces\\000.allowed.example")
    assert (record["verdict"], record["inspector"]) == ("block", "dns-tunnel")
    assert not upstream.saw("allowed.example")
    assert addresses(sidecar.ask("fine.allowed.example")) == [ANY_V4]  # still serving


def test_a_tunnel_right_under_an_entry_blocks_the_entry(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    config = write_config(
        tmp_path / "cage.yaml",
        upstream,
        domains={"allow": ["tunnel.example", "allowed.example"]},
        dns={"tunnel_action": "block"},
    )
    sidecar = start_sidecar(config)
    assert rcode(sidecar.ask(f"{HEX_LABEL}.tunnel.example", "TXT")) == "REFUSED"
    assert rcode(sidecar.ask("probe.tunnel.example", "A")) == "REFUSED"
    assert rcode(sidecar.ask("tunnel.example", "TXT")) == "REFUSED"
    assert not upstream.saw("probe.tunnel.example")
    assert addresses(sidecar.ask("www.allowed.example", "A")) == [ANY_V4]


def test_blocked_zones_stay_blocked_after_a_restart(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    kept = tmp_path / "state" / "dns-blocked-zones.json"
    config = _config(tmp_path, upstream, tunnel_action="block")
    first = start_sidecar(config, args=("--blocked-zones", str(kept)))
    assert rcode(first.ask(f"{HEX_LABEL}.evil.workers.dev", "TXT")) == "REFUSED"
    assert json.loads(kept.read_text()) == {"v": 1, "zones": ["evil.workers.dev"]}
    first.stop()

    second = start_sidecar(config, args=("--blocked-zones", str(kept)))
    assert "still blocking zones after DNS tunnel detection: evil.workers.dev" in (
        second.stderr_text()
    )
    before = len(upstream.queries)
    for qtype in ("A", "TXT"):
        assert rcode(second.ask("more-data.evil.workers.dev", qtype)) == "REFUSED"
    assert len(upstream.queries) == before  # refused from the first query on
    assert rcode(second.ask("good.workers.dev", "A")) == "NOERROR"


def test_an_unreadable_blocked_zones_file_stops_the_sidecar(
    tmp_path: Path, upstream: FakeDns
) -> None:
    kept = tmp_path / "dns-blocked-zones.json"
    kept.write_text('{"v": 1, "zones": ["evil..example"]}')
    result = subprocess.run(
        [
            sys.executable, "-c", "from agentcage.cli.main import main; main()",
            "dns", "run", "-c", str(_config(tmp_path, upstream)),
            "--listen", f"127.0.0.1:{free_port()}", "--blocked-zones", str(kept),
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"the blocked-zones file {kept} is not a blocked-zones file" in result.stderr
    assert "delete it to unblock every zone" in result.stderr
