"""A cage role inside the guest: `agentcage proxy run`, from the same contract as the units.

The host prepares the sidecars' directories and config through the guest agent, starts
the proxy and the DNS sidecar with the argv `ProxyRunArgs` and `DnsRunArgs` render for
their containers, and checks from inside the guest that each refuses a name off the
allowlist and audits the decision.
"""

from __future__ import annotations

import json
import struct
import time

import dns.message
import dns.rcode

from tests.integration.vm.conftest import MachineFactory
from tests.support.microvm import (
    GUEST_DNS_PORT,
    GUEST_PROXY_PORT,
    start_guest_dns,
    start_guest_proxy,
)

# mitmproxy's start under TCG takes tens of seconds; the bound is for a loaded host.
PROXY_START = 240


def test_the_sidecar_roles_block_and_audit_inside_the_guest(machine: MachineFactory) -> None:
    vm = machine(mem_mib=512)
    vm.wait_ready(120)
    seconds = start_guest_proxy(vm, time.monotonic() + PROXY_START)
    request = "GET http://blocked.example/ HTTP/1.1\r\nHost: blocked.example\r\n\r\n"
    answer = vm.connect("127.0.0.1", GUEST_PROXY_PORT, timeout=30, send=request)["received"]
    assert answer.startswith("HTTP/1.1 403"), answer
    lines = vm.ask("read", path="audit/proxy.jsonl")["content"].splitlines()
    records = [json.loads(line) for line in lines]
    assert any("blocked.example" in json.dumps(record) for record in records), records
    print(f"proxy listening in the guest {seconds:.1f} s after start")

    seconds = start_guest_dns(vm, time.monotonic() + PROXY_START)
    print(f"dns listening in the guest {seconds:.1f} s after start")
    # A and AAAA of an unlisted name get the sinkhole; every other type is REFUSED.
    query = dns.message.make_query("blocked.example", "TXT").to_wire()
    framed = (struct.pack("!H", len(query)) + query).decode("latin-1")
    raw = vm.connect("127.0.0.1", GUEST_DNS_PORT, timeout=30, send=framed)["received"]
    reply = dns.message.from_wire(raw.encode("latin-1")[2:])
    assert reply.rcode() == dns.rcode.REFUSED, dns.rcode.to_text(reply.rcode())
    dns_lines = vm.ask("read", path="audit/dns.jsonl")["content"].splitlines()
    assert any("blocked.example" in line for line in dns_lines), dns_lines
    assert vm.stop(timeout=30).clean
