"""The unit of a microVM cage (`isolation: firecracker`): its external network and one container.

Rendered with the same building blocks and hardening as the sidecars' units (cage/quadlet.py),
so the VM container is deployed, listed and torn down by the same code as every cage unit.
"""

from __future__ import annotations

from pathlib import Path

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
    without_cgroups,
)
from agentcage.cage.unit import UnitFile

# What a rootless microVM cage gives up against a rootful one; `cage status` and `host
# check --microvm` say it.
ROOTLESS_NOTE = (
    "rootless microVM: the VM's container runs as your own user on the host (Podman's "
    "keep-id), not as a uid of its own: an escape from QEMU and then from the container "
    "lands in your account (rootful: in uid 10000, which owns nothing else)"
)


def vm_units(
    spec: CageSpec,
    image: str,
    state_dir: str,
    run_dir: str,
    memory_mib: int,
    kvm_group: str | None,
    firecracker: tuple[str, str] | None = None,
    rootless: bool = False,
    shares: tuple[tuple[str, bool], ...] = (),
) -> CageUnits:
    """A microVM cage (`isolation: firecracker`): its way out and one container.

    The container runs QEMU, passt and the guest's channel owner (`agentcage vm run`,
    cage/vm/vm_run.py) with the sidecars' hardening; the cage's three roles run in the
    guest, from the units `build_units` renders (cage/vm/guest_roles.py). It is "started"
    once the whole cage in the guest is up (READY=1 from the owner), so a start under
    TCG may take minutes.

    `kvm_group` (None without KVM) is the group that may open /dev/kvm inside the
    container: Podman passes the device with the host's owner and mode, and the
    container's uid 10000 is in none of the host's groups (`kvm_access_group`).

    `firecracker` (the host's binary, and where the container sees it) is for a
    Firecracker cage: its guest NIC is a TAP the container makes and NATs out
    (cage/vm/tap_uplink.py), which takes CAP_NET_ADMIN, /dev/net/tun and forwarding in
    the container's own network namespace; nothing of that is given to a QEMU cage.

    `rootless`: the container's uid 10000 is the user's own uid on the host (keep-id).
    Rootless `:U` would give the state and the VM's directory to a sub-UID the user
    cannot act as, and the CLI writes there after the first boot (`cage update`'s
    drives and plan) and talks to the 0600 control socket the container makes. The
    cost is ROOTLESS_NOTE.

    `shares`: the agent's writable bind mounts (host directory, and whether the config
    asked for `U`), mounted at the same path for virtiofsd (cage/vm/virtiofs.py). Never
    chowned unless asked: it is the user's directory, not the cage's.
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
    if rootless:
        keep_id = f"--userns=keep-id:uid={SIDECAR_USER},gid={SIDECAR_USER}"
        unit.add("Container", "PodmanArgs", (keep_id,))
    if kvm_group is not None:
        unit.add("Container", "AddDevice", "/dev/kvm")
        unit.add("Container", "PodmanArgs", (f"--group-add={kvm_group}",))
    if firecracker is not None:
        binary, inside = firecracker
        unit.add("Container", "AddDevice", "/dev/net/tun")
        unit.add("Container", "AddCapability", "NET_ADMIN")
        unit.add("Container", "Sysctl", "net.ipv4.ip_forward=1")
        unit.add("Container", "Volume", f"{binary}:{inside}:ro")
    unit.add("Container", "Environment", ("HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1"))
    # The state the guest gets copies of (config, CA), and the VM's own directory.
    unit.add("Container", "Volume", f"{state_dir}:{state_dir}:ro,U")
    unit.add("Container", "Volume", f"{run_dir}:{run_dir}:rw,U")
    # The guest's audit lines are copied out here (cage/vm/audit_follow.py).
    for audit in (spec.paths.proxy_audit_dir, spec.paths.dns_audit_dir):
        unit.add("Container", "Volume", f"{audit}:{audit}:rw,U")
    for directory, chown in shares:
        unit.add("Container", "Volume", f"{directory}:{directory}:rw" + (",U" if chown else ""))
    proxy_secrets(unit, spec)
    unit.add("Container", "Entrypoint", f"{VENV_BIN}/agentcage")
    unit.add("Container", "Exec", ("vm", "run", run_dir))
    unit.add("Container", "Notify", True)
    unit.add("Service", "Restart", "no")
    unit.add("Service", "TimeoutStartSec", 900)
    unit.add("Service", "TimeoutStopSec", 60)
    stopped_is_success(unit)
    unit.add("Install", "WantedBy", spec.wanted_by)
    if not spec.cgroups:  # rootless on cgroup v1, as for a container cage's containers
        without_cgroups(unit)
    files = {
        f"{external}.network": external_network(topology),
        f"{topology.container('vm')}.container": unit,
    }
    return CageUnits(files)


def kvm_access_group(rootless: bool, device: Path = Path("/dev/kvm")) -> str:
    """What `--group-add` lets the container's user open /dev/kvm.

    Rootful: the device's group id (Debian's udev makes /dev/kvm 0660 root:kvm). Rootless:
    the host's groups are not mapped into the user namespace, so only `keep-groups`
    (crun keeps the invoking user's supplementary groups) reaches a device the user
    opens through the kvm group.
    """
    if rootless:
        return "keep-groups"
    return str(device.stat().st_gid)
