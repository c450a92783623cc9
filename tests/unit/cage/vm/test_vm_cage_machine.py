from __future__ import annotations

from pathlib import Path

from agentcage.cage.vm.cage_machine import cage_machine
from agentcage.cage.vm.firecracker_api import api_calls
from agentcage.cage.vm.guest_image import GuestImage
from agentcage.cage.vm.hypervisor import Hypervisor
from agentcage.cage.vm.machine import StreamNetwork, TapNetwork
from agentcage.cage.vm.qemu_argv import qemu_argv
from agentcage.config.schema import FirecrackerConfig

GUEST = GuestImage(Path("/c/vmlinuz"), Path("/c/initrd.img"), Path("/c/root.ext4"))
QEMU = Hypervisor("qemu", "/usr/bin/qemu-system-x86_64", "kvm", "k")
FIRECRACKER = Hypervisor("firecracker", "/usr/bin/firecracker", "kvm", "f")


def test_the_0_3_keys_size_the_machine_and_pick_the_kernel(tmp_path: Path) -> None:
    settings = FirecrackerConfig.model_validate({"vcpus": 4, "mem_mb": 1024})
    spec = cage_machine(
        "basic",
        settings,
        QEMU,
        GUEST,
        tmp_path,
        StreamNetwork(tmp_path / "n"),
        "10.0.2.2/24",
        "10.0.2.1",
    )
    assert (spec.vcpus, spec.mem_mib, spec.kernel) == (4, 1024, GUEST.kernel)
    assert spec.nics[0].mac == "02:00:0a:00:02:02"
    argv = qemu_argv(spec, QEMU.binary, QEMU.accel)
    assert argv[argv.index("-m") + 1] == "1024M" and argv[argv.index("-smp") + 1] == "4"
    assert spec.channel.kind == "serial"
    custom = FirecrackerConfig.model_validate({"kernel": "/boot/vmlinux-6.1"})
    tap = TapNetwork("tap-basic")
    fc = cage_machine("basic", custom, FIRECRACKER, GUEST, tmp_path, tap, "10.0.2.2/24")
    assert fc.kernel == Path("/boot/vmlinux-6.1") and fc.channel.kind == "vsock"
    assert api_calls(fc)[0].body == {"vcpu_count": 2, "mem_size_mib": 2048, "smt": False}
