"""The host's systemd service for one microVM, in the same unit model as the cage's units.

The monitor runs as the service's main process with no way back into the host: no
capabilities, no new privileges, a read-only view of the system, only its own runtime
directory writable, only unix sockets (and /dev/kvm or /dev/net/tun when the spec needs
them), no core dumps (guest memory holds the cage's secrets). Stopping asks the guest to
shut down (`ExecStop=`, over the agent channel), then systemd terminates and, after
`TimeoutStopSec=`, kills. `Restart=no`: a VM that died stays down, and with it the agent's
only network, rather than coming back unobserved.
"""

from __future__ import annotations

from pathlib import Path

from agentcage.cage.unit import UnitFile
from agentcage.cage.vm.hypervisor import Hypervisor
from agentcage.cage.vm.machine import MachineSpec, TapNetwork
from agentcage.cage.vm.qemu_argv import qemu_argv
from agentcage.errors import VmmError

SHUTDOWN_MODULE = "agentcage.cage.vm.agent_channel"
# QEMU's own memory beyond the guest's: devices, and under TCG its translated-code cache.
OVERHEAD_MIB = {"kvm": 128, "tcg": 384}
STOP_SECONDS = 30


def vm_service(spec: MachineSpec, hypervisor: Hypervisor, python: str, run_dir: Path) -> UnitFile:
    if hypervisor.kind != "qemu":
        raise VmmError("only the QEMU monitor has a service unit so far")
    unit = UnitFile()
    unit.add("Unit", "Description", f"agentcage microVM {spec.name}")
    unit.add("Service", "Type", "exec")
    unit.add("Service", "ExecStart", tuple(qemu_argv(spec, hypervisor.binary, hypervisor.accel)))
    unit.add(
        "Service",
        "ExecStop",
        (python, "-m", SHUTDOWN_MODULE, str(spec.channel.socket), str(STOP_SECONDS - 5)),
    )
    unit.add("Service", "TimeoutStopSec", str(STOP_SECONDS))
    unit.add("Service", "Restart", "no")
    unit.add("Service", "UMask", "0077")
    unit.add("Service", "LimitCORE", "0")
    unit.add("Service", "MemoryMax", f"{spec.mem_mib + OVERHEAD_MIB[hypervisor.accel]}M")
    unit.add("Service", "TasksMax", "256")
    for key in (
        "NoNewPrivileges",
        "PrivateTmp",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectClock",
        "ProtectHostname",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "LockPersonality",
    ):
        unit.add("Service", key, "yes")
    unit.add("Service", "ProtectSystem", "strict")
    unit.add("Service", "ProtectHome", "read-only")
    unit.add("Service", "ReadWritePaths", str(run_dir))
    unit.add("Service", "CapabilityBoundingSet", "")
    unit.add("Service", "SystemCallArchitectures", "native")
    unit.add("Service", "RestrictAddressFamilies", "AF_UNIX")
    unit.add("Service", "DevicePolicy", "closed")
    if hypervisor.accel == "kvm":
        unit.add("Service", "DeviceAllow", "/dev/kvm rw")
        # TCG writes the code it runs; only with KVM can the monitor do without W+X pages.
        unit.add("Service", "MemoryDenyWriteExecute", "yes")
    if any(isinstance(nic.network, TapNetwork) for nic in spec.nics):
        unit.add("Service", "DeviceAllow", "/dev/net/tun rw")
    return unit
