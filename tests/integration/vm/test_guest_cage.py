"""A whole cage inside the guest: DNS sidecar, proxy and agent, from the cage's own units.

The roles come from `build_units(CageSpec)` through guest_roles.py, as `cage create` would
run them; the agent is a busybox shell script on its own read-only root drive (the
workspace volume copied onto it) and reports from inside what it is and what it can
reach. The guest's NIC leads to passt in a namespace of the test's own, whose gateway
serves a banner: the guest itself reaches it, the agent must not.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from agentcage.cage.vm.guest_cage import (
    reload_cage,
    set_secret,
    start_cage,
    verify_network,
)
from agentcage.dns import SINKHOLE_V4
from tests.integration.vm.conftest import MachineFactory, Uplink
from tests.support.microvm_cage import TOPOLOGY, allow_domain, prepare_cage
from tests.support.vm_uplink import BANNER, GATEWAY

START = 300  # both sidecars under TCG on a loaded 2-core host
AGENT_SCRIPT = """\
set +e
echo "status: $(grep -E '^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' \
/proc/self/status | tr '\\t\\n' ' ;')"
touch /written 2>/dev/null && echo "root: writable" || echo "root: read-only"
echo "key: $ANTHROPIC_API_KEY"
echo "proxy: $HTTP_PROXY"
echo "routes: $(cat /proc/net/route | tr '\\t\\n' ' ;')"
[ -e /proc/1 ] && echo "init: visible" || echo "init: hidden"
echo "allowed: $(wget -q -O- --header 'x-api-key: {{{{ANTHROPIC_API_KEY}}}}' \
http://example.com/echo 2>&1 | tr '\r\n' '  ')"
echo "blocked: $(wget -q -O- http://blocked.example/ 2>&1 | tr '\\n' ' ')"
echo "direct: $(nc -w 3 {gateway} {port} </dev/null 2>&1 | tr '\\n' ' ')"
echo "dns: $(nslookup blocked.example 2>&1 | tr '\\n' ' ')"
echo "workspace: $(cat /app/marker)"
echo done
until wget -q -O- http://later.example/echo >/dev/null 2>&1; do sleep 2; done
echo "later: reached"
while true; do
  wget -q -O- --header 'x-api-key: {{{{ANTHROPIC_API_KEY}}}}' http://example.com/again \
    >/dev/null 2>&1
  sleep 2
done
"""


@pytest.mark.usefixtures("guest")
def test_the_agent_in_the_guest_is_confined_and_reaches_only_the_sidecars(
    machine: MachineFactory, uplink: Uplink, workdir: Path
) -> None:
    script = AGENT_SCRIPT.format(gateway=GATEWAY, port=uplink.port)
    cage = prepare_cage(workdir, script, {"marker": "copied onto the root drive\n"})

    vm = machine(
        secrets={"ANTHROPIC_API_KEY": "sk-real-value"},
        uplink=uplink,
        mem_mib=768,
        drives=(cage.agent_drive,),
    )
    vm.wait_ready(120)
    assert vm.connect(GATEWAY, uplink.port)["received"] == BANNER.decode()  # the guest's NIC
    seconds = start_cage(
        vm.ask, cage.roles, TOPOLOGY, cage.state_dir, time.monotonic() + START, cage.resolvers
    )
    print(f"listening after start: {seconds}")

    deadline = time.monotonic() + 60
    while "done" not in (log := vm.ask("read", path="logs/agent.log")["content"]):
        assert vm.status()["roles"]["agent"] is None, log
        assert time.monotonic() < deadline, log
        time.sleep(1)
    report = dict(line.split(": ", 1) for line in log.splitlines() if ": " in line)
    status = dict(item.split(":", 1) for item in report["status"].split(";") if ":" in item)
    status = {key.strip(): " ".join(value.split()) for key, value in status.items()}
    assert status["Uid"] == "1000 1000 1000 1000" and status["Gid"] == "1000 1000 1000 1000"
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[capabilities] == "0000000000000000", status
    assert status["NoNewPrivs"] == "1"
    assert report["root"] == "read-only"
    assert report["key"] == "{{ANTHROPIC_API_KEY}}"  # the placeholder, never the value
    assert report["proxy"] == f"http://{TOPOLOGY.proxy_ip}:8080"
    assert report["workspace"] == "copied onto the root drive"
    # Only the link to the sidecars, and default deny's route via the proxy: a direct
    # connection ends at the proxy's deny listener, never at the uplink, with its line.
    routes = [r.split() for r in report["routes"].split(";")[1:] if r.strip()]
    via = socket.inet_aton(TOPOLOGY.proxy_ip)[::-1].hex().upper()  # /proc/net/route's form
    assert sorted((r[0], r[1], r[2]) for r in routes) == [
        ("eth0", "00000000", via),
        ("eth0", "0007590A", "00000000"),
    ], routes
    assert BANNER.decode().strip() not in report["direct"], report["direct"]
    assert report["init"] == "hidden"  # its /proc shows only its own processes
    assert "403" in report["blocked"], report["blocked"]
    # Allowed: through the guest's NIC to the fake internet behind passt's gateway, with
    # the real key injected on the way out and scrubbed from what came back.
    arrived = uplink.record.read_text()
    assert "GET /echo HTTP/1.1" in arrived and "x-api-key: sk-real-value" in arrived, arrived
    assert "GET /echo" in report["allowed"], report["allowed"]
    assert "sk-real-value" not in log, log
    assert str(SINKHOLE_V4) in report["dns"], report["dns"]

    # `cage verify`'s network checks, run in the guest with the agent's view.
    rows = verify_network(
        vm.ask,
        cage.roles[2],
        GATEWAY,
        "example.com",
        TOPOLOGY.proxy_ip,
        time.monotonic() + 120,
        steered=True,
    )
    # All of them pass but the two that fetch the allowlisted host over HTTPS: the fake
    # internet here serves plain HTTP only.
    https_only = {"allowlisted host reachable", "no-proxy request to an allowlisted host"}
    assert len(rows) == 12, rows
    assert all(row["passed"] for row in rows if row["name"] not in https_only), rows

    proxy_audit = vm.ask("read", path="state/audit/proxy/proxy.jsonl")["content"]
    records = [json.loads(line) for line in proxy_audit.splitlines()]
    assert any("blocked.example" in json.dumps(r) for r in records), proxy_audit
    flows = {(r["host"], r["port"], r["scheme"]) for r in records if r["kind"] == "flow"}
    assert (GATEWAY, uplink.port, "tcp") in flows, proxy_audit  # the agent's direct try
    assert {(TOPOLOGY.proxy_ip, 22, "tcp"), (TOPOLOGY.proxy_ip, 123, "udp")} <= flows  # verify's
    dns_audit = vm.ask("read", path="state/audit/dns/dns.jsonl")["content"]
    assert "blocked.example" in dns_audit, dns_audit

    # `domain add` on a running cage: new config in, SIGHUP, no restart of anything.
    allow_domain(workdir, "later.example")
    assert reload_cage(vm.ask, cage.roles, cage.state_dir) == ["dns", "proxy"]
    deadline = time.monotonic() + 60
    while "later: reached" not in (log := vm.ask("read", path="logs/agent.log")["content"]):
        assert time.monotonic() < deadline, log
        time.sleep(1)
    assert "GET /echo HTTP/1.1\nHost: later.example" in uplink.record.read_text()

    # `secret set` on a running cage: the new value into the guest, the proxy re-reads it.
    set_secret(vm.ask, "ANTHROPIC_API_KEY", "sk-rotated-value")
    deadline = time.monotonic() + 60
    while "x-api-key: sk-rotated-value" not in uplink.record.read_text():
        assert time.monotonic() < deadline, uplink.record.read_text()[-600:]
        time.sleep(1)
    roles = vm.status()["roles"]  # all three still the same processes; verify's ended 0
    assert [roles[name] for name in ("dns", "proxy", "agent", "verify")] == [None] * 3 + [0]
    assert vm.stop(timeout=30).clean
