"""`vm run` with the Firecracker backend, whole, against a fake `firecracker` process.

No Firecracker and no usable KVM here, so tests/support/fake_firecracker_vm.py stands in
for the binary: the checked fake API, a TAP it must be able to open, and a hybrid vsock
with a fake guest agent behind it. `vm run` runs (as root, like the VM's container with
its CAP_NET_ADMIN) in a network namespace the test makes, where it creates the TAP and
the NAT table; what is left there once it returns is what the agent would have.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentcage.cage.topology import Topology
from agentcage.cage.vm.channel_owner import OwnerClient
from agentcage.cage.vm.tap_uplink import GUEST_ADDRESS, HOST_ADDRESS, TABLE, TAP
from agentcage.cage.vm.vm_plan import PLAN_FILE, VmPlan

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGY = Topology("fccage", 0, "10.89.7.0/24", "10.89.8.0/24")


@dataclass
class FcRun:
    workdir: Path
    plan: VmPlan
    memory: Path

    @property
    def record(self) -> dict[str, Any]:
        path = self.workdir / "record.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def after(self) -> dict[str, Any]:
        return json.loads((self.workdir / "after.json").read_text())

    def start(self, boot_seconds: float = 30, silent: bool = False) -> subprocess.Popen[str]:
        env = dict(os.environ, FAKE_FC_RECORD=str(self.workdir / "record.json"))
        if silent:
            env["FAKE_FC_SILENT"] = "1"
        argv = [sys.executable, "-m", "tests.support.vm_run_probe", str(self.plan.run_dir),
                str(self.memory), str(boot_seconds), str(self.workdir / "after.json")]  # fmt: skip
        return subprocess.Popen(
            ["unshare", "--net", *argv], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def left_behind(self) -> list[str]:
        """Files of the VM's that outlived it (the plan and the drives are the host's)."""
        kept = {PLAN_FILE, "vmlinux", "initrd.img", "root.ext4", "agent.ext4", "console.log"}
        left = [p.name for p in self.plan.run_dir.iterdir() if p.name not in kept]
        return left + [p.name for p in self.memory.iterdir()]


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[FcRun]:
    workdir = Path(tempfile.mkdtemp(prefix="fcvm-", dir="/tmp"))  # short unix socket paths
    run_dir, state = workdir / "vm", workdir / "state"
    run_dir.mkdir()
    state.mkdir()
    (run_dir / "vmlinux").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 505)
    for name in ("initrd.img", "root.ext4", "agent.ext4"):
        (run_dir / name).write_bytes(b"\0" * 4096)
    binary = workdir / "firecracker"
    binary.write_text(
        f'#!/bin/sh\ncd {ROOT} && exec {sys.executable} -m tests.support.fake_firecracker_vm "$@"\n'
    )
    binary.chmod(0o755)
    plan = VmPlan(
        name="fccage", vcpus=1, mem_mib=512, qemu="", accel="kvm",
        kernel=run_dir / "vmlinux", initrd=run_dir / "initrd.img", root=run_dir / "root.ext4",
        agent_drive=run_dir / "agent.ext4", address=GUEST_ADDRESS, gateway=HOST_ADDRESS,
        topology=TOPOLOGY, state_dir=state, run_dir=run_dir, resolvers=("192.0.2.53",),
        roles=(), monitor="firecracker", firecracker=str(binary),
    )  # fmt: skip
    (run_dir / PLAN_FILE).write_text(plan.as_json())
    yield FcRun(workdir, plan, workdir / "mem")
    shutil.rmtree(workdir, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_a_firecracker_cage_boots_answers_and_stops_cleanly(fc: FcRun) -> None:
    process = fc.start()
    deadline = time.monotonic() + 60
    while not fc.plan.control.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the control socket never appeared"
        time.sleep(0.1)
    # Through the owner, over the hybrid vsock, to the guest agent.
    assert OwnerClient(fc.plan.control).ask("status")["kernel"] == "fake"
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "guest stopped (clean" in output
    record = fc.record
    calls = [(method, path) for method, path, _ in record["calls"]]
    assert calls == [
        ("PUT", "/machine-config"),
        ("PUT", "/boot-source"),
        ("PUT", "/drives/root"),
        ("PUT", "/drives/secrets"),
        ("PUT", "/drives/agent"),
        ("PUT", "/network-interfaces/eth0"),
        ("PUT", "/vsock"),
        ("PUT", "/actions"),
        ("PUT", "/actions"),
    ]
    assert [body for _, path, body in record["calls"] if path == "/actions"] == [
        {"action_type": "InstanceStart"},
        {"action_type": "SendCtrlAltDel"},
    ]
    state = record["state"]
    assert state["boot_source"]["kernel_image_path"] == str(fc.plan.kernel)
    args = state["boot_source"]["boot_args"].split()
    assert "agentcage.channel=vsock" in args and "reboot=k" in args
    assert any(a.endswith(f",{GUEST_ADDRESS},{HOST_ADDRESS}") for a in args if "net=" in a)
    assert state["nics"]["eth0"]["host_dev_name"] == TAP
    assert state["vsock"]["uds_path"] == str(fc.memory / "vsock.sock")
    assert all(drive["is_read_only"] for drive in state["drives"].values())
    # The TAP Firecracker opened: ours (uid), with the host end of the guest's /30, NATed.
    (tap,) = record["tap"]
    tun = tap["linkinfo"]["info_data"]
    assert (tun["type"], tun["user"]) == ("tap", pwd.getpwuid(os.getuid()).pw_name)
    ipv4 = [(a["local"], a["prefixlen"]) for a in tap["addr_info"] if a["family"] == "inet"]
    assert ipv4 == [(HOST_ADDRESS, 30)]
    assert f"table ip {TABLE}" in record["nft"] and "masquerade" in record["nft"]
    assert "policy drop" in record["nft"]
    # The cage was brought up through the same channel (no roles in this plan).
    assert [op["op"] for op in record["ops"][:3]] == ["status", "netns", "write"]
    assert record["exited"] == "clean" and not alive(record["pid"])
    assert fc.left_behind() == []
    assert TAP not in fc.after["links"] and TABLE not in fc.after["tables"]


def test_a_call_firecracker_refuses_leaves_nothing_running_and_no_network(fc: FcRun) -> None:
    fc.plan.agent_drive.unlink()  # Firecracker refuses a drive whose file is missing
    process = fc.start()
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 1, output
    assert "Firecracker refused PUT /drives/agent (400): Unable to create the block device" in (
        output
    )
    record = fc.record
    assert "InstanceStart" not in json.dumps(record["calls"])
    assert not alive(record["pid"])
    assert fc.left_behind() == []
    assert TAP not in fc.after["links"] and TABLE not in fc.after["tables"]


def test_a_guest_that_never_answers_is_stopped_and_leaves_no_network(fc: FcRun) -> None:
    process = fc.start(boot_seconds=3, silent=True)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 1, output
    assert "the guest agent socket" in output and "never opened" in output
    record = fc.record
    assert record["state"]["started"] is True and record["ops"] == []
    assert not alive(record["pid"])
    assert fc.left_behind() == []
    assert TAP not in fc.after["links"] and TABLE not in fc.after["tables"]
