"""The unit of a microVM cage (`isolation: firecracker`): its external network and one container.

Rendered with the same building blocks and hardening as the sidecars' units (cage/quadlet.py),
so the VM container is deployed, listed and torn down by the same code as every cage unit.
"""

from __future__ import annotations

from agentcage.cage.contract import SIDECAR_USER, VENV_BIN
from agentcage.cage.quadlet import (
    CageSpec,
    CageUnits,
    attach,
    external_network,
    hardening,
    labels,
    proxy_secrets,
    stopped_is_success,
)
from agentcage.cage.unit import UnitFile


def vm_units(
    spec: CageSpec, image: str, state_dir: str, run_dir: str, memory_mib: int, kvm: bool
) -> CageUnits:
    """A microVM cage (`isolation: firecracker`): its way out and one container.

    The container runs QEMU, passt and the guest's channel owner (`agentcage vm run`,
    cage/vm/vm_run.py) with the sidecars' hardening; the cage's three roles run in the
    guest, from the units `build_units` renders (cage/vm/guest_roles.py). It is "started"
    once the whole cage in the guest is up (READY=1 from the owner), so a start under
    TCG may take minutes.
    """
    topology = spec.topology
    unit = UnitFile()
    unit.add("Unit", "Description", f"agentcage {topology.cage}: the microVM")
    unit.add("Container", "Image", image)
    unit.add("Container", "Pull", "never")
    unit.add("Container", "ContainerName", topology.container("vm"))
    labels(unit, topology, "vm")
    external = topology.external_network
    unit.add("Container", "Network", attach(external, topology.proxy_external_ip))
    hardening(unit, SIDECAR_USER, f"{memory_mib}m", 256)
    if kvm:
        unit.add("Container", "AddDevice", "/dev/kvm")
    unit.add("Container", "Environment", ("HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1"))
    # The state the guest gets copies of (config, CA), and the VM's own directory.
    unit.add("Container", "Volume", f"{state_dir}:{state_dir}:ro,U")
    unit.add("Container", "Volume", f"{run_dir}:{run_dir}:rw,U")
    # The guest's audit lines are copied out here (cage/vm/audit_follow.py).
    for audit in (spec.paths.proxy_audit_dir, spec.paths.dns_audit_dir):
        unit.add("Container", "Volume", f"{audit}:{audit}:rw,U")
    proxy_secrets(unit, spec)
    unit.add("Container", "Entrypoint", f"{VENV_BIN}/agentcage")
    unit.add("Container", "Exec", ("vm", "run", run_dir))
    unit.add("Container", "Notify", True)
    unit.add("Service", "Restart", "no")
    unit.add("Service", "TimeoutStartSec", 900)
    unit.add("Service", "TimeoutStopSec", 60)
    stopped_is_success(unit)
    unit.add("Install", "WantedBy", spec.wanted_by)
    files = {
        f"{external}.network": external_network(topology),
        f"{topology.container('vm')}.container": unit,
    }
    return CageUnits(files)
