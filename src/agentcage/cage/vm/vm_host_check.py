"""`agentcage host check --microvm`: KVM, and which monitor a microVM cage would get here.

A separate finding, asked for explicitly: `isolation: firecracker` is not available yet
(docs/microvm.md), so a host without KVM or QEMU must not warn every container user.
"""

from __future__ import annotations

from agentcage.cage.host_check import HostFinding, HostProbe
from agentcage.cage.podman import PodmanHost
from agentcage.cage.vm.hypervisor import FIRECRACKER, QEMU, HostFacts, choose, kvm_from
from agentcage.config.schema import FirecrackerConfig
from agentcage.errors import VmmError

QEMU_FIX = (
    ("Debian/Ubuntu", "apt-get install qemu-system-x86"),
    ("Fedora", "dnf install qemu-system-x86-core"),
)


def microvm_facts(probe: HostProbe) -> HostFacts:
    device_rw = probe.run("test", "-r", "/dev/kvm", "-a", "-w", "/dev/kvm").ok
    return HostFacts(
        kvm=kvm_from(device_rw, probe.read("/proc/cpuinfo")),
        firecracker=probe.which(FIRECRACKER),
        qemu=probe.which(QEMU),
    )


def check_microvm(host: PodmanHost, config: FirecrackerConfig | None = None) -> HostFinding:
    facts = microvm_facts(HostProbe(host.runner, host.rootless))
    kvm = "usable KVM" if facts.kvm else "no usable KVM (/dev/kvm absent, or no vmx/svm)"
    try:
        chosen = choose(config or FirecrackerConfig(), facts)
    except VmmError as exc:
        return HostFinding("microvm", "warn", f"{kvm}; {exc.message}", QEMU_FIX)
    monitor = "Firecracker" if chosen.kind == "firecracker" else f"QEMU microvm ({chosen.accel})"
    return HostFinding(
        "microvm",
        "pass" if chosen.accel == "kvm" else "warn",
        f"{kvm}; a microVM would run on {monitor} at {chosen.binary}: {chosen.reason} "
        "(isolation: firecracker is not available yet, docs/microvm.md)",
    )
