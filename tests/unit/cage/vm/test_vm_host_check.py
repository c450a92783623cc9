from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cage.vm.debian_parts import run_tool
from agentcage.cage.vm.owned_tree import Owners, restore_owners
from agentcage.cage.vm.vm_host_check import check_microvm
from agentcage.cli.main import cli
from agentcage.config.schema import FirecrackerConfig
from agentcage.errors import VmmError
from tests.unit.cage.host_fakes import done, healthy, host_of
from tests.unit.cage.test_host_cli import _detect


@pytest.fixture(autouse=True)
def _tools_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The drive tools are looked up on the machine running the tests; these say which.
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")


VMX = "processor\t: 0\nflags\t\t: fpu vme vmx hypervisor\n"
NO_VMX = "processor\t: 0\nflags\t\t: fpu vme hypervisor\n"


def test_kvm_gets_qemu_with_kvm_and_passes() -> None:
    runner = healthy()
    runner.devices["/dev/kvm"] = "rw"
    runner.files["/proc/cpuinfo"] = VMX
    runner.executables |= {"/usr/bin/firecracker"}
    finding = check_microvm(host_of(runner))
    assert finding.status == "pass"
    assert "usable KVM; microVM cages run on QEMU microvm with KVM" in finding.detail
    # A binary that names no version is not taken, and the finding says why.
    assert "`firecracker` at /usr/bin/firecracker (version unknown: not used" in finding.detail


def test_kvm_and_a_recent_firecracker_get_firecracker() -> None:
    runner = healthy()
    runner.devices["/dev/kvm"] = "rw"
    runner.files["/proc/cpuinfo"] = VMX
    runner.executables |= {"/usr/bin/firecracker"}
    runner.answers[("/usr/bin/firecracker", "--version")] = done("Firecracker v1.10.1\n")
    finding = check_microvm(host_of(runner))
    assert finding.status == "pass"
    assert "microVM cages run on Firecracker (/usr/bin/firecracker" in finding.detail
    assert "CAP_NET_ADMIN and /dev/net/tun" in finding.detail
    assert "`firecracker` at /usr/bin/firecracker (v1.10.1)" in finding.detail
    runner.answers[("/usr/bin/firecracker", "--version")] = done("Firecracker v1.7.0\n")
    older = check_microvm(host_of(runner))
    assert "QEMU microvm with KVM" in older.detail
    assert "(v1.7.0: not used, Firecracker 1.7.0 is older than 1.8.0" in older.detail


def test_software_nested_kvm_gets_qemu_tcg_with_a_warning_that_it_is_slow() -> None:
    runner = healthy()
    runner.devices["/dev/kvm"] = "rw"  # opens, as kvm_pvm does
    runner.files["/proc/cpuinfo"] = NO_VMX
    finding = check_microvm(host_of(runner))
    assert finding.status == "warn"
    assert "no usable KVM" in finding.detail
    assert "QEMU microvm under TCG (software emulation" in finding.detail
    assert "slow" in finding.detail


def test_no_qemu_on_this_machine_is_no_problem() -> None:
    """The monitor is the VM container's own; only KVM decides the backend."""
    finding = check_microvm(host_of(healthy()))
    assert "no `qemu-system-x86_64` found" not in finding.detail
    assert "under TCG" in finding.detail


def test_a_firecracker_choice_is_refused_by_name() -> None:
    config = FirecrackerConfig(hypervisor="firecracker")
    finding = check_microvm(host_of(healthy()), config)
    assert finding.status == "warn"
    assert "`firecracker.hypervisor: firecracker` cannot run here: no `firecracker` binary" in (
        finding.detail
    )


def test_host_check_reports_microvm_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    _detect(monkeypatch, host_of(healthy()))
    plain = CliRunner().invoke(cli, ["host", "check"])
    assert plain.exit_code == 0 and "microvm" not in plain.output
    asked = CliRunner().invoke(cli, ["host", "check", "--microvm"])
    assert asked.exit_code == 0  # a warning, not a failure: TCG works, slowly
    assert "[warn] microvm: no usable KVM" in asked.output


def test_rootless_says_what_a_rootless_microvm_cage_gives_up() -> None:
    assert "rootless" not in check_microvm(host_of(healthy())).detail
    finding = check_microvm(host_of(healthy(), rootless=True))
    assert "rootless microVM: the VM's container runs as your own user" in finding.detail


def test_missing_drive_tools_fail_and_name_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = {"debugfs", "mkfs.ext4", "mmdebstrap"}
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool in absent else f"/bin/{tool}")
    finding = check_microvm(host_of(healthy()))
    assert finding.status == "fail"
    assert "a microVM cage cannot be made: `mkfs.ext4`, `debugfs`, `mmdebstrap`" in finding.detail
    assert dict(finding.fixes) == {"Debian/Ubuntu": "apt-get install e2fsprogs mmdebstrap"}


@pytest.mark.parametrize("tool", ["mkfs.ext4", "debugfs"])
def test_a_missing_tool_is_an_error_naming_its_package(
    tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run there
    with pytest.raises(VmmError) as raised:
        if tool == "debugfs":
            restore_owners(tmp_path / "root.ext4", tmp_path, Owners())
        else:
            run_tool([tool, "-q", str(tmp_path / "volume.ext4")])
    assert f"`{tool}` is not installed" in raised.value.message
    assert "apt-get install e2fsprogs" in (raised.value.hint or "")
