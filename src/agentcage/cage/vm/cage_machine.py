"""One cage's `MachineSpec`, from its `firecracker:` settings and the monitor chosen for it.

Where the 0.3.x keys land: `vcpus` and `mem_mb` size the machine, `kernel` replaces the
built guest kernel (it must then boot the built initramfs: virtio as modules of the same
release, or built in), `firecracker_bin` and `qemu_bin` went into the choice of monitor.
The channel follows the monitor: vsock for Firecracker, which has no virtio-serial;
virtio-serial for QEMU, since vsock needs the host's /dev/vhost-vsock.
"""

from __future__ import annotations

from pathlib import Path

from agentcage.cage.topology import mac_address
from agentcage.cage.vm.guest_image import GuestImage
from agentcage.cage.vm.hypervisor import Hypervisor
from agentcage.cage.vm.machine import (
    ROOT_LABEL,
    AgentChannel,
    Drive,
    MachineSpec,
    Network,
    Nic,
)
from agentcage.config.schema import FirecrackerConfig


def cage_machine(
    name: str,
    settings: FirecrackerConfig,
    hypervisor: Hypervisor,
    guest: GuestImage,
    run_dir: Path,
    network: Network,
    address: str,
    gateway: str | None = None,
    secrets: Drive | None = None,
) -> MachineSpec:
    """`address` is the guest's "A.B.C.D/N"; its MAC follows it, as container MACs do."""
    channel = (
        AgentChannel("vsock", run_dir / "vsock.sock")
        if hypervisor.kind == "firecracker"
        else AgentChannel("serial", run_dir / "agent.sock")
    )
    return MachineSpec(
        name=name,
        vcpus=settings.vcpus,
        mem_mib=settings.mem_mb,
        kernel=Path(settings.kernel) if settings.kernel else guest.kernel,
        initrd=guest.initrd,
        root=Drive("root", guest.root, read_only=True, label=ROOT_LABEL),
        secrets=secrets,
        channel=channel,
        nics=(Nic("eth0", mac_address(address.split("/")[0]), network, address, gateway),),
        console_log=run_dir / "console.log",
    )
