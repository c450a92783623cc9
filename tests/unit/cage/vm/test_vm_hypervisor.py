from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage.vm.hypervisor import HostFacts, choose, kvm_usable
from agentcage.cage.vm.vm_cage import cage_hypervisor
from agentcage.config.schema import FirecrackerConfig
from agentcage.errors import VmmError

FC = "/usr/bin/firecracker"
V18 = "Firecracker v1.8.0\n\nSupported snapshot data format versions: ..."
EVERYTHING = HostFacts(kvm=True, firecracker=FC, qemu="/usr/bin/qemu", firecracker_version=V18)
NO_KVM = HostFacts(kvm=False, firecracker=FC, qemu="/usr/bin/qemu", firecracker_version=V18)


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


def test_firecracker_older_than_acpi_tables_or_of_unknown_version_is_not_taken() -> None:
    old = HostFacts(True, FC, "/usr/bin/qemu", "Firecracker v1.7.0\n")
    assert choose(config(), old).kind == "qemu"
    with pytest.raises(VmmError, match=r"1\.7\.0 is older than 1\.8\.0 \(ACPI"):
        choose(config(hypervisor="firecracker"), old)
    unknown = HostFacts(True, FC, "/usr/bin/qemu", "firecracker, some build\n")
    with pytest.raises(VmmError, match="did not name a version"):
        choose(config(hypervisor="firecracker"), unknown)
    newer = HostFacts(True, FC, "/usr/bin/qemu", "Firecracker v1.12.1\n")
    assert choose(config(hypervisor="firecracker"), newer).kind == "firecracker"


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


def test_a_cage_runs_the_hosts_firecracker_or_its_containers_qemu() -> None:
    """The host has no QEMU of its own to find: the VM container's is always there."""
    host = HostFacts(True, FC, None, V18)
    assert cage_hypervisor(config(), host).binary == FC
    qemu = cage_hypervisor(config(hypervisor="qemu"), host)
    assert (qemu.kind, qemu.binary, qemu.accel) == ("qemu", "qemu-system-x86_64", "kvm")
    no_fc = cage_hypervisor(config(), HostFacts(False, None, None))
    assert (no_fc.kind, no_fc.accel) == ("qemu", "tcg")
