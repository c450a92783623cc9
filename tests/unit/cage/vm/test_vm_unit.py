from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage.vm.hypervisor import Hypervisor
from agentcage.cage.vm.machine import StreamNetwork
from agentcage.cage.vm.vm_unit import vm_service
from agentcage.errors import VmmError
from tests.unit.cage.vm.specs import spec

TCG = Hypervisor("qemu", "/usr/bin/qemu-system-x86_64", "tcg", "t")
KVM = Hypervisor("qemu", "/usr/bin/qemu-system-x86_64", "kvm", "k")


def service(tmp: Path, hypervisor: Hypervisor, tap: bool = False) -> dict[str, list[str]]:
    network = None if tap else StreamNetwork(tmp / "passt.sock")
    unit = vm_service(spec(tmp, kind="serial", network=network), hypervisor, "/py", tmp)
    found: dict[str, list[str]] = {}
    for entry in unit.sections["Service"]:
        value = entry.value
        found.setdefault(entry.key, []).append(value if isinstance(value, str) else " ".join(value))
    return found


def test_the_monitor_runs_confined_and_stops_through_the_guest(tmp_path: Path) -> None:
    tcg = service(tmp_path, TCG)
    assert tcg["ExecStart"][0].startswith("/usr/bin/qemu-system-x86_64 -M microvm,")
    assert tcg["ExecStop"] == [f"/py -m agentcage.cage.vm.agent_channel {tmp_path}/agent.sock 25"]
    assert tcg["Restart"] == ["no"] and tcg["LimitCORE"] == ["0"]
    assert tcg["CapabilityBoundingSet"] == [""] and tcg["NoNewPrivileges"] == ["yes"]
    assert tcg["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert tcg["ReadWritePaths"] == [str(tmp_path)]
    assert tcg["MemoryMax"] == [f"{512 + 384}M"]
    # TCG's JIT needs writable code; no device but the defaults.
    assert "MemoryDenyWriteExecute" not in tcg and "DeviceAllow" not in tcg
    kvm = service(tmp_path, KVM, tap=True)
    assert kvm["MemoryDenyWriteExecute"] == ["yes"]
    assert kvm["DeviceAllow"] == ["/dev/kvm rw", "/dev/net/tun rw"]


def test_firecracker_has_no_unit_yet(tmp_path: Path) -> None:
    firecracker = Hypervisor("firecracker", "/usr/bin/firecracker", "kvm", "f")
    with pytest.raises(VmmError, match="only the QEMU monitor"):
        vm_service(spec(tmp_path), firecracker, "/py", tmp_path)
