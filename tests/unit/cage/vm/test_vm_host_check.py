from __future__ import annotations

import pytest
from click.testing import CliRunner

from agentcage.cage.vm.vm_host_check import check_microvm
from agentcage.cli.main import cli
from tests.unit.cage.host_fakes import healthy, host_of
from tests.unit.cage.test_host_cli import _detect

VMX = "processor\t: 0\nflags\t\t: fpu vme vmx hypervisor\n"
NO_VMX = "processor\t: 0\nflags\t\t: fpu vme hypervisor\n"


def test_kvm_and_firecracker_pass() -> None:
    runner = healthy()
    runner.devices["/dev/kvm"] = "rw"
    runner.files["/proc/cpuinfo"] = VMX
    runner.executables |= {"/usr/bin/firecracker", "/usr/bin/qemu-system-x86_64"}
    finding = check_microvm(host_of(runner))
    assert finding.status == "pass"
    assert "usable KVM; a microVM would run on Firecracker at /usr/bin/firecracker" in (
        finding.detail
    )


def test_software_nested_kvm_gets_qemu_tcg_with_a_warning() -> None:
    runner = healthy()
    runner.devices["/dev/kvm"] = "rw"  # opens, as kvm_pvm does
    runner.files["/proc/cpuinfo"] = NO_VMX
    runner.executables |= {"/usr/bin/firecracker", "/usr/bin/qemu-system-x86_64"}
    finding = check_microvm(host_of(runner))
    assert finding.status == "warn"
    assert "no usable KVM" in finding.detail
    assert "QEMU microvm (tcg) at /usr/bin/qemu-system-x86_64" in finding.detail


def test_no_monitor_at_all_names_the_package() -> None:
    finding = check_microvm(host_of(healthy()))
    assert finding.status == "warn"
    assert "no `qemu-system-x86_64` found" in finding.detail
    assert dict(finding.fixes)["Debian/Ubuntu"] == "apt-get install qemu-system-x86"


def test_host_check_reports_microvm_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    _detect(monkeypatch, host_of(healthy()))
    plain = CliRunner().invoke(cli, ["host", "check"])
    assert plain.exit_code == 0 and "microvm" not in plain.output
    asked = CliRunner().invoke(cli, ["host", "check", "--microvm"])
    assert asked.exit_code == 0  # a warning, not a failure: the mode is not available yet
    assert "[warn] microvm: no usable KVM" in asked.output
