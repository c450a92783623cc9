"""A small real microVM for tests and bench/microvm: the guest image, one NIC, no cage yet."""

from __future__ import annotations

import socket
from pathlib import Path

from agentcage.cage.vm.guest_image import GuestImage
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
from agentcage.cage.vm.rootfs import secrets_image

TCG = Hypervisor("qemu", "qemu-system-x86_64", "tcg", "this machine has no usable KVM")
NIC_ADDRESS = "10.0.2.15/24"


def network_end(path: Path) -> socket.socket:
    """The far end of the guest's NIC: a unix socket the caller owns, which forwards nothing."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    return listener


def secrets_drive(workdir: Path, secrets: dict[str, str]) -> Drive:
    secrets_image(secrets, workdir / "secrets.ext4")
    return Drive("secrets", workdir / "secrets.ext4", True, SECRETS_LABEL)


def small_machine(
    guest: GuestImage,
    workdir: Path,
    network: Path,
    secrets: Drive | None = None,
    extra: tuple[str, ...] = (),
    mem_mib: int = 256,
    address: str = NIC_ADDRESS,
    gateway: str | None = None,
) -> MachineSpec:
    return MachineSpec(
        name="boot-test",
        vcpus=1,
        mem_mib=mem_mib,
        kernel=guest.kernel,
        initrd=guest.initrd,
        root=Drive("root", guest.root, read_only=True, label=ROOT_LABEL),
        secrets=secrets,
        channel=AgentChannel("serial", workdir / "agent.sock"),
        nics=(Nic("eth0", "02:ac:00:00:00:02", StreamNetwork(network), address, gateway),),
        console_log=workdir / "console.log",
        extra_cmdline=extra,
    )
