"""`agentcage host check --microvm`: KVM, and which monitor a microVM cage gets here.

A separate finding, asked for explicitly (and printed by `cage create` for a microVM
cage): a host without KVM must not warn every container user. A microVM cage runs the
QEMU of its own container image (vm_image.py), so this machine needs no QEMU of its own;
what decides the backend is KVM and, for Firecracker, the host's `firecracker` binary
(mounted into the cage's container) at `FIRECRACKER_MIN` or later. Without KVM the
guest runs under TCG, QEMU's software emulation: it works, and is slow (docs/microvm.md
has the figures).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from agentcage.cage.host_check import HostFinding, HostProbe
from agentcage.cage.podman import PodmanHost
from agentcage.cage.vm.debian_parts import TOOL_PACKAGES
from agentcage.cage.vm.hypervisor import FIRECRACKER, HostFacts, firecracker_version, kvm_from
from agentcage.cage.vm.vm_cage import cage_hypervisor
from agentcage.cage.vm.vm_container import ROOTLESS_NOTE
from agentcage.config.schema import FirecrackerConfig
from agentcage.errors import VmmError

KVM_FIX = (
    ("any", "a host (or a VM with nested virtualisation) whose CPU flags show vmx or svm"),
    ("Debian/Ubuntu", "add your user to the `kvm` group (rootless cages)"),
)


def missing_tools(which: Callable[[str], str | None] | None = None) -> list[str]:
    """The drive-making tools absent here. They run where agentcage runs
    (`debian_parts.run_tool`), whichever host the cage goes to, so they are looked up
    on this machine, not through the target's runner."""
    look = which or shutil.which
    return [tool for tool in TOOL_PACKAGES if look(tool) is None]


def microvm_facts(probe: HostProbe, config: FirecrackerConfig) -> HostFacts:
    device_rw = probe.run("test", "-r", "/dev/kvm", "-a", "-w", "/dev/kvm").ok
    firecracker = probe.which(config.firecracker_bin or FIRECRACKER)
    version = probe.run(firecracker, "--version") if firecracker else None
    return HostFacts(
        kvm=kvm_from(device_rw, probe.read("/proc/cpuinfo")),
        firecracker=firecracker,
        qemu=None,
        firecracker_version=version.stdout if version is not None and version.ok else None,
    )


def backend_line(config: FirecrackerConfig, facts: HostFacts) -> str:
    """Which monitor a microVM cage runs on here, and what that costs."""
    chosen = cage_hypervisor(config, facts)
    if chosen.kind == "firecracker":
        return (
            f"microVM cages run on Firecracker ({chosen.binary}, mounted read-only into "
            "their container) with KVM; the container gets CAP_NET_ADMIN and /dev/net/tun "
            "for the guest's TAP"
        )
    if chosen.accel == "kvm":
        return "microVM cages run on QEMU microvm with KVM (in their container)"
    return (
        "microVM cages run on QEMU microvm under TCG (software emulation, in their "
        "container): it works, and is slow; a cage takes a minute or more to come up"
    )


def check_microvm(host: PodmanHost, config: FirecrackerConfig | None = None) -> HostFinding:
    config = config or FirecrackerConfig()
    facts = microvm_facts(HostProbe(host.runner, host.rootless), config)
    kvm = "usable KVM" if facts.kvm else "no usable KVM (/dev/kvm absent, or no vmx/svm)"
    try:
        line = backend_line(config, facts)
    except VmmError as exc:
        return HostFinding("microvm", "warn", f"{kvm}; {exc.message}", KVM_FIX)
    found = ""
    if facts.firecracker:
        version = firecracker_version(facts.firecracker_version or "")
        shown = "v" + ".".join(map(str, version)) if version else "version unknown"
        why = facts.firecracker_unfit()
        found = f"; `firecracker` at {facts.firecracker} ({shown}" + (
            f": not used, {why})" if why else ")"
        )
    if host.rootless:
        found += f"; {ROOTLESS_NOTE}"
    missing = missing_tools()
    if missing:
        packages = " ".join(sorted({TOOL_PACKAGES[tool] for tool in missing}))
        return HostFinding(
            "microvm",
            "fail",
            f"{kvm}; {line}{found}; missing here, so a microVM cage cannot be made: "
            + ", ".join(f"`{tool}`" for tool in missing),
            (("Debian/Ubuntu", f"apt-get install {packages}"),),
        )
    if facts.kvm:
        return HostFinding("microvm", "pass", f"{kvm}; {line}{found}")
    return HostFinding("microvm", "warn", f"{kvm}; {line}{found}", KVM_FIX)
