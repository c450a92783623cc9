"""The host's side of a microVM cage: its drives, its plan and its one container unit.

`cage create` with `isolation: firecracker` comes here from deploy.py after the state, the
CA and the sidecars' config are made as for a container cage. This module builds (or
reuses) the guest image, exports the agent's image onto its root drive, renders the
cage's container units only to turn them into the guest's roles (guest_roles.py), writes
the plan the VM's container executes (vm_plan.py), and hands back the units that are
actually deployed: the external network and the `vm` container (vm_container.vm_units), which
go through the same unit writer as a container cage's, so hosts without quadlet and the
`agentcage host start` container get them the same way.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

from agentcage.cage.contract import SIDECAR_USER
from agentcage.cage.layout import Images
from agentcage.cage.podman import PodmanHost
from agentcage.cage.quadlet import CageSpec, CageUnits, build_units
from agentcage.cage.vm.agent_root import agent_root_from_export
from agentcage.cage.vm.firecracker_api import check_kernel_format
from agentcage.cage.vm.guest_image import GuestImage, elf_kernel
from agentcage.cage.vm.guest_roles import ImageFacts, guest_roles
from agentcage.cage.vm.hypervisor import (
    FIRECRACKER,
    HostFacts,
    Hypervisor,
    choose,
    kvm_usable,
    version_of,
)
from agentcage.cage.vm.tap_uplink import GUEST_ADDRESS, HOST_ADDRESS
from agentcage.cage.vm.vm_container import kvm_access_group, vm_units
from agentcage.cage.vm.vm_plan import PLAN_FILE, VmPlan
from agentcage.cage.vm.vm_unit import OVERHEAD_MIB
from agentcage.cage.vm.volume_drive import ensure_volume
from agentcage.config.container import BindMount
from agentcage.config.schema import CageConfig, FirecrackerConfig
from agentcage.errors import VmmError

VM_DIR = "vm"
QEMU = "qemu-system-x86_64"
# Where the host's `firecracker` appears in the VM's container (mounted read-only).
FIRECRACKER_IN_CONTAINER = "/usr/local/bin/firecracker"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run_dir(state_dir: Path) -> Path:
    return state_dir / VM_DIR


def image_facts(host: PodmanHost, image: str) -> ImageFacts:
    """What the agent's container would take from its image besides files."""
    shown = host.podman("image", "inspect", "--format", "{{json .Config}}", image).stdout
    config = json.loads(shown) or {}
    env = dict(word.partition("=")[::2] for word in config.get("Env") or ())
    env.setdefault("PATH", DEFAULT_PATH)  # as Podman gives a container whose image has none
    return ImageFacts(
        entrypoint=tuple(config.get("Entrypoint") or ()),
        cmd=tuple(config.get("Cmd") or ()),
        env=env,
        workdir=config.get("WorkingDir") or "/",
    )


def _link(source: Path, target: Path) -> None:
    """The guest image's files in the cage's own directory: the VM's container (and the
    `host start` container around it) sees that directory, not the cache."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def agent_drive(host: PodmanHost, image: str, agent_unit_spec: CageUnits, name: str,
                state_dir: Path, target: Path) -> None:  # fmt: skip
    """`podman export` of the agent's image, made into its read-only root drive."""
    unit = agent_unit_spec.files[f"agentcage-{name}-agent.container"]
    archive = target.with_suffix(".tar")
    container = f"agentcage-{name}-export"
    host.podman("rm", "-f", container, check=False)
    host.podman("create", "--name", container, "--pull=never", image, "true")
    try:
        host.podman("export", "-o", str(archive), container)
    finally:
        host.podman("rm", "-f", container, check=False)
    agent_root_from_export(archive, unit, state_dir, target)


def host_facts(settings: FirecrackerConfig) -> HostFacts:
    """This host's KVM and Firecracker (its binary goes into the VM's container)."""
    firecracker = shutil.which(settings.firecracker_bin or FIRECRACKER)
    version = version_of(firecracker) if firecracker else None
    return HostFacts(kvm_usable(), firecracker, QEMU, version)


def cage_hypervisor(settings: FirecrackerConfig, facts: HostFacts) -> Hypervisor:
    """The monitor a microVM cage runs on: Firecracker (the host's binary) where it and KVM
    are usable and asked for or `auto`, else QEMU (its container's), with KVM when usable."""
    return choose(settings, replace(facts, qemu=QEMU))


def _hypervisor(config: CageConfig) -> Hypervisor:
    return cage_hypervisor(config.firecracker, host_facts(config.firecracker))


def prepare(
    host: PodmanHost, config: CageConfig, spec: CageSpec, state_dir: Path, guest: GuestImage
) -> None:
    """The cage's drives (the guest's, linked; the agent's, made) and the plan."""
    settings = config.firecracker
    hypervisor = _hypervisor(config)
    directory = run_dir(state_dir)
    directory.mkdir(mode=0o700, exist_ok=True)
    firecracker = hypervisor.kind == "firecracker"
    # Firecracker boots an ELF only: the one inside the pinned package's vmlinuz.
    built = elf_kernel(guest) if firecracker else guest.kernel
    kernel = Path(settings.kernel) if settings.kernel else built
    if firecracker:
        check_kernel_format(kernel)  # at create, not when the container first boots it
    boot = "vmlinux" if firecracker else "vmlinuz"
    parts = {boot: kernel, "initrd.img": guest.initrd, "root.ext4": guest.root}
    for name, source in parts.items():
        _link(source, directory / name)
    # Every secret the config names, set or not yet: the guest's proxy must see the
    # secrets directory from the start, since `secret set` later fills it live.
    names = tuple(rule.env for rule in config.secret_injection)
    units = build_units(replace(spec, secret_names=names))
    facts = image_facts(host, spec.images.agent)
    can_share = hypervisor.kind == "qemu"
    roles = guest_roles(units, spec.topology, state_dir, facts, shares=can_share)
    for mount in writable_binds(config):
        check_share_owner(mount.host, "U" in mount.options.split(","), host.rootless)
    agent_drive(host, spec.images.agent, units, config.name, state_dir, directory / "agent.ext4")
    for role in roles:
        for volume in role.volumes:
            ensure_volume(directory, volume, role.uid, role.gid)
    external = ipaddress.IPv4Network(spec.topology.external_subnet)
    # passt gives the guest the container's own address; a TAP is NATed (tap_uplink.py).
    address = f"{spec.topology.proxy_external_ip}/{external.prefixlen}"
    address, gateway = (GUEST_ADDRESS, HOST_ADDRESS) if firecracker else (address, str(external[1]))
    plan = VmPlan(
        name=config.name,
        vcpus=settings.vcpus,
        mem_mib=settings.mem_mb,
        qemu=QEMU,
        accel=hypervisor.accel,
        kernel=directory / boot,
        initrd=directory / "initrd.img",
        root=directory / "root.ext4",
        agent_drive=directory / "agent.ext4",
        address=address,
        gateway=gateway,
        topology=spec.topology,
        state_dir=state_dir,
        run_dir=directory,
        resolvers=tuple(config.effective_dns_servers()),
        roles=tuple(roles),
        monitor=hypervisor.kind,
        firecracker=FIRECRACKER_IN_CONTAINER if firecracker else "",
    )
    (directory / PLAN_FILE).write_text(plan.as_json(), encoding="utf-8")


def writable_binds(config: CageConfig) -> list[BindMount]:
    """The agent's bind mounts shared live with the guest (virtiofs.py)."""
    return [m for m in config.container.bind_mounts if "ro" not in m.options.split(",")]


def check_share_owner(directory: str, chowned: bool, rootless: bool) -> None:
    """virtiofsd serves a share as the VM container's user, without capabilities: that
    user must be able to write the directory, or the agent's writes fail one by one."""
    if chowned:
        return  # `:U`: Podman gives it to that user when the container starts
    path = Path(directory)
    if rootless:
        # keep-id: the container's user is this user.
        if os.access(path, os.W_OK | os.X_OK):
            return
        who, fix = "you", "make it writable by your user"
    else:
        info = path.stat()
        user = int(SIDECAR_USER)
        # The kernel's order: the owner's bits if it owns it, else the group's, else others'.
        if info.st_uid == user:
            bits = info.st_mode >> 6
        elif info.st_gid == user:
            bits = info.st_mode >> 3
        else:
            bits = info.st_mode
        if bits & 0o3 == 0o3:
            return
        who = f"uid {SIDECAR_USER}"
        fix = (
            f"give it to that user (`chown -R {SIDECAR_USER}:{SIDECAR_USER} {directory}`), "
            "or add `U` to the mount's options (Podman does that chown)"
        )
    raise VmmError(
        f"the writable bind mount {directory} is served to the guest by virtiofsd, which runs "
        f"as {who} (the VM's container) and could not write it",
        hint=f"{fix}, or mark it `:ro`; docs/microvm.md, Volumes",
    )


def deployed_units(
    config: CageConfig, spec: CageSpec, state_dir: Path, rootless: bool
) -> CageUnits:
    """What a microVM cage deploys: its external network and its `vm` container."""
    hypervisor = _hypervisor(config)
    memory = config.firecracker.mem_mb + OVERHEAD_MIB[hypervisor.accel]
    directory = str(run_dir(state_dir))
    # The host's binary, mounted read-only where the plan runs it.
    firecracker = (
        (hypervisor.binary, FIRECRACKER_IN_CONTAINER) if hypervisor.kind == "firecracker" else None
    )
    # KVM was judged usable on this machine (`kvm_usable`), so its device's group is read here too.
    kvm_group = kvm_access_group(rootless) if hypervisor.accel == "kvm" else None
    shares = tuple((m.host, "U" in m.options.split(",")) for m in writable_binds(config))
    return vm_units(
        spec, spec.images.proxy, str(state_dir), directory, memory, kvm_group, firecracker,
        rootless, shares,
    )  # fmt: skip


def images_of(vm_image: str, agent: str) -> Images:
    """What `images.json` records for a microVM cage: the VM's image for both sidecars."""
    return Images(proxy=vm_image, dns=vm_image, agent=agent)
