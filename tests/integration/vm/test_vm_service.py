"""The VM's systemd service: systemd accepts it, and its ExecStop really stops a guest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agentcage.cage.vm.guest_image import GuestImage
from agentcage.cage.vm.vm_unit import vm_service
from tests.integration.vm.conftest import ROOT, MachineFactory
from tests.support.microvm import TCG, small_machine


def test_systemd_analyze_verify_accepts_the_vm_service(guest: GuestImage, workdir: Path) -> None:
    spec = small_machine(guest, workdir, workdir / "net.sock")
    unit = vm_service(spec, TCG, sys.executable, workdir)
    path = workdir / "agentcage-boot-test-vm.service"
    path.write_text(unit.render())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on warnings (an unknown key, a bad quote): any output is a failure.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stderr


def test_the_stop_command_shuts_the_guest_down(machine: MachineFactory) -> None:
    vm = machine()  # not waited for: the stop command is the channel's only client
    stop = vm_service(vm.spec, TCG, sys.executable, vm.spec.channel.socket.parent).get(
        "Service", "ExecStop"
    )[0]
    assert isinstance(stop, tuple)
    argv = [*stop[:-1], "120"]  # the first request also waits for the boot, slow under TCG
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    assert vm.process is not None
    assert vm.process.wait(timeout=10) == 0
