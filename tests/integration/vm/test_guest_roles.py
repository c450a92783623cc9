"""A cage role inside the guest: `agentcage proxy run`, from the same contract as the units.

The host prepares the proxy's directories and config through the guest agent, starts
the proxy with the argv `ProxyRunArgs` renders for the proxy container, and checks from
inside the guest that it blocks a name off the allowlist and audits the decision.
"""

from __future__ import annotations

import json
import time

from tests.integration.vm.conftest import MachineFactory
from tests.support.microvm import GUEST_PROXY_PORT, start_guest_proxy

# mitmproxy's start under TCG takes tens of seconds; the bound is for a loaded host.
PROXY_START = 240


def test_the_proxy_role_blocks_and_audits_inside_the_guest(machine: MachineFactory) -> None:
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
    assert vm.stop(timeout=30).clean
