from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage.vm.hypervisor import HostFacts, choose, kvm_usable
from agentcage.config.schema import FirecrackerConfig
from agentcage.errors import VmmError

EVERYTHING = HostFacts(kvm=True, firecracker="/usr/bin/firecracker", qemu="/usr/bin/qemu")
NO_KVM = HostFacts(kvm=False, firecracker="/usr/bin/firecracker", qemu="/usr/bin/qemu")


def config(**values: object) -> FirecrackerConfig:
    return FirecrackerConfig.model_validate(values)


def test_auto_takes_firecracker_only_when_it_can_run() -> None:
    assert choose(config(), EVERYTHING).kind == "firecracker"
    chosen = choose(config(), NO_KVM)
    assert (chosen.kind, chosen.accel) == ("qemu", "tcg")
    assert "software emulation" in chosen.reason
    no_fc = choose(config(), HostFacts(kvm=True, firecracker=None, qemu="/usr/bin/qemu"))
    assert (no_fc.kind, no_fc.accel) == ("qemu", "kvm")


def test_a_named_monitor_that_cannot_run_is_refused_not_replaced() -> None:
    with pytest.raises(VmmError, match="no usable /dev/kvm"):
        choose(config(hypervisor="firecracker"), NO_KVM)
    with pytest.raises(VmmError, match="no `firecracker` binary"):
        choose(config(hypervisor="firecracker"), HostFacts(True, None, "/usr/bin/qemu"))
    with pytest.raises(VmmError, match="qemu-system-x86_64"):
        choose(config(hypervisor="qemu"), HostFacts(True, "/usr/bin/firecracker", None))
    with pytest.raises(VmmError, match="accel: kvm"):
        choose(config(hypervisor="qemu", accel="kvm"), NO_KVM)
    assert choose(config(hypervisor="qemu", accel="tcg"), EVERYTHING).accel == "tcg"
    assert choose(config(hypervisor="qemu"), EVERYTHING).kind == "qemu"


def test_software_nested_kvm_without_vmx_or_svm_is_not_usable(tmp_path: Path) -> None:
    dev = tmp_path / "kvm"
    dev.write_text("")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu vme de pse hypervisor\n")
    assert not kvm_usable(dev, cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu vme vmx hypervisor\n")
    assert kvm_usable(dev, cpuinfo)
    assert not kvm_usable(tmp_path / "absent", cpuinfo)


def test_the_0_3_keys_still_validate() -> None:
    old = config(vcpus=1, mem_mb=512, kernel="/boot/vmlinux", firecracker_bin="/opt/fc")
    assert (old.vcpus, old.mem_mb, old.hypervisor) == (1, 512, "auto")
