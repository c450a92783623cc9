"""Which monitor runs a cage's microVM, decided once from config and what the host offers.

A choice the config names and the host cannot honour is an error, never a quiet fallback:
`hypervisor: firecracker` on a host without Firecracker must not turn into something else.
Only `auto` picks, and it says what it picked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentcage.cage.vm.qemu_argv import Accel
from agentcage.config.schema import FirecrackerConfig
from agentcage.errors import VmmError

QEMU = "qemu-system-x86_64"
FIRECRACKER = "firecracker"
# 1.8.0 describes the vCPUs, interrupt controllers and virtio-mmio devices in ACPI tables
# on x86_64 (its CHANGELOG, PR #4428). The pinned Debian kernel needs that: it is built
# without CONFIG_X86_MPPARSE (no MPTable) and without CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES
# (no devices from the command line), the only ways older releases describe them.
FIRECRACKER_MIN = (1, 8, 0)
_VERSION = re.compile(r"Firecracker v(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class HostFacts:
    """What the choice depends on; probed by `probe_host`, given directly by tests."""

    kvm: bool
    firecracker: str | None
    qemu: str | None
    # What `firecracker --version` printed; None when it could not be run.
    firecracker_version: str | None = None

    def firecracker_unfit(self) -> str | None:
        """Why this host's Firecracker cannot run a cage, or None if it can."""
        if not self.firecracker:
            return "no `firecracker` binary"
        version = firecracker_version(self.firecracker_version or "")
        wanted = ".".join(map(str, FIRECRACKER_MIN))
        if version is None:
            return f"`{self.firecracker} --version` did not name a version"
        if version < FIRECRACKER_MIN:
            shown = ".".join(map(str, version))
            return f"Firecracker {shown} is older than {wanted} (ACPI device tables)"
        if not self.kvm:
            return "no usable /dev/kvm"
        return None


def firecracker_version(text: str) -> tuple[int, int, int] | None:
    found = _VERSION.search(text)
    if found is None:
        return None
    major, minor, patch = (int(part) for part in found.groups())
    return (major, minor, patch)


def version_of(binary: str) -> str | None:
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout


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
    firecracker = shutil.which(config.firecracker_bin or FIRECRACKER)
    return HostFacts(
        kvm=kvm_usable(),
        firecracker=firecracker,
        qemu=shutil.which(config.qemu_bin or QEMU),
        firecracker_version=version_of(firecracker) if firecracker else None,
    )


def choose(config: FirecrackerConfig, host: HostFacts) -> Hypervisor:
    if config.hypervisor in ("auto", "firecracker"):
        missing = host.firecracker_unfit()
        if missing is None and host.firecracker:
            return Hypervisor("firecracker", host.firecracker, "kvm", "binary and KVM usable")
        if config.hypervisor == "firecracker":
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
