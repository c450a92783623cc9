"""A real guest under QEMU TCG: boots, its agent answers, it stops cleanly or is killed."""

from __future__ import annotations

import os
import signal

import pytest

from agentcage.cage.vm.debian_parts import KERNEL_RELEASE
from agentcage.errors import VmmError
from tests.integration.vm.conftest import MachineFactory, Uplink
from tests.support.vm_uplink import BANNER, GATEWAY

# TCG boots the guest in ~10 s on this kind of machine; the bound is for a loaded host.
BOOT_TIMEOUT = 120


def test_the_guest_boots_answers_and_shuts_down_cleanly(machine: MachineFactory) -> None:
    vm = machine(secrets={"ANTHROPIC_API_KEY": "sk-ant-real-value"})
    status = vm.wait_ready(BOOT_TIMEOUT)
    assert status["kernel"] == KERNEL_RELEASE
    assert status["pid"] == 1
    # Its only route is the one the host configured; no default route, no IPv6.
    assert status["routes"] == ["10.0.2.0/24 via 0.0.0.0 dev eth0"]
    assert [a.split()[1:4] for a in status["addresses"]] == [
        ["lo", "inet", "127.0.0.1/8"],
        ["eth0", "inet", "10.0.2.15/24"],
    ]
    assert status["root_read_only"] is True
    assert "ANTHROPIC_API_KEY" in status["secrets"]
    assert vm.status()["pid"] == 1  # the channel serves more than one request

    secrets_image = vm.spec.secrets.path if vm.spec.secrets else None
    report = vm.stop(timeout=30)
    assert report.clean and report.returncode == 0
    assert vm.process is not None and vm.process.poll() == 0
    assert not vm.spec.channel.socket.exists()
    assert secrets_image is not None and not secrets_image.exists()


def test_a_guest_that_does_not_shut_down_is_killed(machine: MachineFactory) -> None:
    vm = machine()
    vm.wait_ready(BOOT_TIMEOUT)
    assert vm.process is not None
    os.kill(vm.process.pid, signal.SIGSTOP)  # neither the guest nor QEMU can answer now
    report = vm.stop(timeout=2)
    assert not report.clean
    assert report.returncode == -signal.SIGKILL
    assert vm.process.poll() is not None


def test_a_guest_whose_agent_fails_ends_the_vm(machine: MachineFactory) -> None:
    """Fail closed: the agent cannot set up (no such secrets drive), PID 1 exits, the VM ends."""
    vm = machine(extra=("agentcage.secrets=agentcage-none",))
    with pytest.raises(VmmError, match="QEMU exited") as caught:
        vm.wait_ready(BOOT_TIMEOUT)
    assert vm.process is not None and vm.process.poll() is not None
    console = vm.spec.console_log.read_text() if vm.spec.console_log else ""
    assert "no drive labelled agentcage-none" in console
    assert caught.value.hint and "console" in caught.value.hint


def test_the_guest_nic_reaches_what_its_uplink_serves_and_nothing_else(
    machine: MachineFactory, uplink: Uplink
) -> None:
    vm = machine(uplink=uplink)
    status = vm.wait_ready(BOOT_TIMEOUT)
    assert status["routes"] == [
        "0.0.0.0/0 via 10.0.2.1 dev eth0",
        "10.0.2.0/24 via 0.0.0.0 dev eth0",
    ]
    served = vm.connect(GATEWAY, uplink.port)
    assert served == {"ok": True, "connected": True, "received": BANNER.decode()}
    # TEST-NET-1: passt tries it from the test's namespace, where it leads nowhere.
    elsewhere = vm.connect("192.0.2.1", 80, timeout=3)
    assert elsewhere["connected"] is False
    assert vm.stop(timeout=30).clean
