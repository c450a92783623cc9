"""Real microVMs under QEMU (TCG here): the guest image, and a machine per test."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agentcage.cage.vm.guest_image import GuestImage, build_guest
from agentcage.cage.vm.hypervisor import Hypervisor
from agentcage.cage.vm.machine import (
    ROOT_LABEL,
    SECRETS_LABEL,
    AgentChannel,
    Drive,
    MachineSpec,
    Nic,
    StreamNetwork,
)
from agentcage.cage.vm.rootfs import ext4_image
from agentcage.cage.vm.vm_process import QemuMachine

TCG = Hypervisor("qemu", "qemu-system-x86_64", "tcg", "tests run without usable KVM")
NIC_ADDRESS = "10.0.2.15/24"


@pytest.fixture(scope="session")
def guest() -> GuestImage:
    # Built once per cache key (~2 min: kernel and busybox .debs, mmdebstrap, mkfs.ext4),
    # then reused from the cache by every run.
    return build_guest()


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Unix socket paths must stay under 108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="vm-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def network(workdir: Path) -> Iterator[Path]:
    """The far end of the guest's NIC: a unix socket this test owns, which forwards nothing."""
    path = workdir / "net.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    yield path
    listener.close()


MachineFactory = Callable[..., QemuMachine]


@pytest.fixture
def machine(guest: GuestImage, workdir: Path, network: Path) -> Iterator[MachineFactory]:
    started: list[QemuMachine] = []

    def make(secrets: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> QemuMachine:
        drive = None
        if secrets is not None:
            tree = workdir / "secrets"
            tree.mkdir()
            for name, value in secrets.items():
                (tree / name).write_text(value)
            ext4_image(tree, workdir / "secrets.ext4", SECRETS_LABEL, slack_mib=2)
            shutil.rmtree(tree)
            drive = Drive("secrets", workdir / "secrets.ext4", True, SECRETS_LABEL)
        spec = MachineSpec(
            name="boot-test",
            vcpus=1,
            mem_mib=256,
            kernel=guest.kernel,
            initrd=guest.initrd,
            root=Drive("root", guest.root, read_only=True, label=ROOT_LABEL),
            secrets=drive,
            channel=AgentChannel("serial", workdir / "agent.sock"),
            nics=(Nic("eth0", "02:ac:00:00:00:02", StreamNetwork(network), NIC_ADDRESS),),
            console_log=workdir / "console.log",
            extra_cmdline=extra,
        )
        vm = QemuMachine(spec, TCG)
        vm.start()
        started.append(vm)
        return vm

    yield make
    for vm in started:
        if vm.process is not None and vm.process.poll() is None:
            vm.process.kill()
            vm.process.wait()
