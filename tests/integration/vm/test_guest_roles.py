"""A cage role inside the guest: `agentcage proxy run`, from the same contract as the units.

The host prepares the proxy's directories and config through the guest agent, starts
the proxy with the argv `ProxyRunArgs` renders for the proxy container, and checks from
inside the guest that it blocks a name off the allowlist and audits the decision.
"""

from __future__ import annotations

import json
import time

from agentcage.cage.contract import SIDECAR_USER, ProxyRunArgs
from agentcage.cage.vm.rootfs import VENV
from tests.integration.vm.conftest import MachineFactory

RUN = "/run/agentcage"
CONFIG = """\
name: vmtest
container:
  image: localhost/none:latest
domains: {allow: [example.com]}
"""
# mitmproxy's start under TCG takes tens of seconds; the bound is for a loaded host.
PROXY_START = 240


def test_the_proxy_role_blocks_and_audits_inside_the_guest(machine: MachineFactory) -> None:
    vm = machine(mem_mib=512)
    vm.wait_ready(120)
    uid = int(SIDECAR_USER)
    for directory, owner, mode in (
        ("etc", 0, 0o755),
        ("ca", uid, 0o700),
        ("audit", uid, 0o700),
        ("fingerprints", uid, 0o700),
        ("secrets", uid, 0o500),
    ):
        vm.ask("mkdir", path=directory, uid=owner, mode=mode)
    vm.ask("write", path="etc/config.yaml", content=CONFIG, mode=0o644, uid=0)
    args = ProxyRunArgs(
        config_file=f"{RUN}/etc/config.yaml",
        listen="127.0.0.1:8080",
        ca_dir=f"{RUN}/ca",
        secrets_dir=f"{RUN}/secrets",
        audit_log=f"{RUN}/audit/proxy.jsonl",
        name_fingerprints=f"{RUN}/fingerprints/names.json",
    )
    argv = [f"{VENV}/bin/agentcage", *args.argv()]
    env = {"PATH": f"{VENV}/bin:/usr/bin:/bin", "HOME": f"{RUN}/ca", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    vm.ask("start", name="proxy", argv=argv, uid=uid, env=env)
    while not vm.connect("127.0.0.1", 8080, timeout=2)["connected"]:
        roles = vm.status()["roles"]
        log = vm.ask("read", path="logs/proxy.log")["content"]
        assert roles["proxy"] is None, f"the proxy exited {roles['proxy']}: {log[-2000:]}"
        assert time.monotonic() - started < PROXY_START, f"no proxy yet: {log[-2000:]}"
        time.sleep(2)
    request = "GET http://blocked.example/ HTTP/1.1\r\nHost: blocked.example\r\n\r\n"
    answer = vm.connect("127.0.0.1", 8080, timeout=30, send=request)["received"]
    assert answer.startswith("HTTP/1.1 403"), answer
    lines = vm.ask("read", path="audit/proxy.jsonl")["content"].splitlines()
    records = [json.loads(line) for line in lines]
    assert any("blocked.example" in json.dumps(r) for r in records), records
    print(f"proxy listening in the guest {time.monotonic() - started:.1f} s after start")
    assert vm.stop(timeout=30).clean
