"""Which monitor runs a cage's microVM, decided once from config and what the host offers.

A choice the config names and the host cannot honour is an error, never a quiet fallback:
`hypervisor: firecracker` on a host without Firecracker must not turn into something else.
Only `auto` picks, and it says what it picked.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentcage.cage.vm.qemu_argv import Accel
from agentcage.config.schema import FirecrackerConfig
from agentcage.errors import VmmError

QEMU = "qemu-system-x86_64"
FIRECRACKER = "firecracker"


@dataclass(frozen=True)
class HostFacts:
    """What the choice depends on; probed by `probe_host`, given directly by tests."""

    kvm: bool
    firecracker: str | None
    qemu: str | None


@dataclass(frozen=True)
class Hypervisor:
    kind: Literal["firecracker", "qemu"]
    binary: str
    accel: Accel
    reason: str


def kvm_usable(dev: Path = Path("/dev/kvm"), cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """/dev/kvm opens read-write and the CPU offers vmx or svm (see `kvm_from`)."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return kvm_from(os.access(dev, os.R_OK | os.W_OK), flags)


def kvm_from(device_rw: bool, cpuinfo: str | None) -> bool:
    """KVM that can boot a stock kernel: a read-writable device and vmx or svm in the flags.

    The second half matters: a software-nested KVM (kvm_pvm) opens fine and then cannot
    boot a stock kernel; its CPU flags lack vmx and svm.
    """
    return device_rw and any(
        line.startswith("flags") and bool({"vmx", "svm"} & set(line.split()))
        for line in (cpuinfo or "").splitlines()
    )


def probe_host(config: FirecrackerConfig) -> HostFacts:
    return HostFacts(
        kvm=kvm_usable(),
        firecracker=shutil.which(config.firecracker_bin or FIRECRACKER),
        qemu=shutil.which(config.qemu_bin or QEMU),
    )


def choose(config: FirecrackerConfig, host: HostFacts) -> Hypervisor:
    if config.hypervisor in ("auto", "firecracker"):
        if host.firecracker and host.kvm:
            return Hypervisor("firecracker", host.firecracker, "kvm", "binary and KVM usable")
        if config.hypervisor == "firecracker":
            missing = "no usable /dev/kvm" if host.firecracker else "no `firecracker` binary"
            raise VmmError(
                f"`firecracker.hypervisor: firecracker` cannot run here: {missing}",
                hint="`agentcage host check` lists what is missing; "
                "`hypervisor: qemu` runs without KVM (slowly)",
            )
    if host.qemu is None:
        raise VmmError(
            f"no `{QEMU}` found for the microVM",
            hint="install Debian's `qemu-system-x86`, or set `firecracker.qemu_bin`",
        )
    if config.accel == "kvm" and not host.kvm:
        raise VmmError("`firecracker.accel: kvm` but /dev/kvm is not usable here")
    accel: Accel = (
        "kvm" if config.accel == "kvm" or (config.accel == "auto" and host.kvm) else "tcg"
    )
    reason = "KVM usable" if accel == "kvm" else "no usable KVM: software emulation (slow)"
    if config.accel == "tcg":
        reason = "TCG as configured"
    return Hypervisor("qemu", host.qemu, accel, reason)
