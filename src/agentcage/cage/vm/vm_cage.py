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
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

from agentcage.cage.layout import Images
from agentcage.cage.podman import PodmanHost
from agentcage.cage.quadlet import CageSpec, CageUnits, build_units
from agentcage.cage.vm.agent_root import agent_root_image
from agentcage.cage.vm.guest_image import GuestImage
from agentcage.cage.vm.guest_roles import ImageFacts, guest_roles
from agentcage.cage.vm.hypervisor import HostFacts, Hypervisor, choose, kvm_usable
from agentcage.cage.vm.vm_container import vm_units
from agentcage.cage.vm.vm_plan import PLAN_FILE, VmPlan
from agentcage.cage.vm.vm_unit import OVERHEAD_MIB
from agentcage.config.schema import CageConfig, FirecrackerConfig
from agentcage.errors import VmmError

VM_DIR = "vm"
QEMU = "qemu-system-x86_64"
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
    with tempfile.TemporaryDirectory(prefix="agentcage-agent-root-") as tmp:
        tree = Path(tmp) / "tree"
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="fully_trusted")
        archive.unlink()
        # Made beside and renamed: on `cage update` the running guest still reads the old.
        fresh = target.with_suffix(".new")
        agent_root_image(tree, unit, state_dir, fresh)
        fresh.replace(target)


def cage_hypervisor(settings: FirecrackerConfig, kvm: bool) -> Hypervisor:
    """The monitor a microVM cage runs on: QEMU (its container's), with KVM when usable."""
    if settings.hypervisor == "firecracker":
        raise VmmError(
            "`firecracker.hypervisor: firecracker` cannot run cages yet: only QEMU's "
            "microvm machine does so far",
            hint="`hypervisor: auto` or `qemu` (docs/microvm.md)",
        )
    return choose(settings, HostFacts(kvm=kvm, firecracker=None, qemu=QEMU))


def _hypervisor(config: CageConfig) -> Hypervisor:
    return cage_hypervisor(config.firecracker, kvm_usable())


def prepare(
    host: PodmanHost, config: CageConfig, spec: CageSpec, state_dir: Path, guest: GuestImage
) -> None:
    """The cage's drives (the guest's, linked; the agent's, made) and the plan."""
    settings = config.firecracker
    hypervisor = _hypervisor(config)
    directory = run_dir(state_dir)
    directory.mkdir(mode=0o700, exist_ok=True)
    kernel = Path(settings.kernel) if settings.kernel else guest.kernel
    parts = {"vmlinuz": kernel, "initrd.img": guest.initrd, "root.ext4": guest.root}
    for name, source in parts.items():
        _link(source, directory / name)
    # Every secret the config names, set or not yet: the guest's proxy must see the
    # secrets directory from the start, since `secret set` later fills it live.
    names = tuple(rule.env for rule in config.secret_injection)
    units = build_units(replace(spec, secret_names=names))
    roles = guest_roles(units, spec.topology, state_dir, image_facts(host, spec.images.agent))
    agent_drive(host, spec.images.agent, units, config.name, state_dir, directory / "agent.ext4")
    external = ipaddress.IPv4Network(spec.topology.external_subnet)
    plan = VmPlan(
        name=config.name,
        vcpus=settings.vcpus,
        mem_mib=settings.mem_mb,
        qemu=QEMU,
        accel=hypervisor.accel,
        kernel=directory / "vmlinuz",
        initrd=directory / "initrd.img",
        root=directory / "root.ext4",
        agent_drive=directory / "agent.ext4",
        address=f"{spec.topology.proxy_external_ip}/{external.prefixlen}",
        gateway=str(external[1]),
        topology=spec.topology,
        state_dir=state_dir,
        run_dir=directory,
        resolvers=tuple(config.effective_dns_servers()),
        roles=tuple(roles),
    )
    (directory / PLAN_FILE).write_text(plan.as_json(), encoding="utf-8")


def deployed_units(config: CageConfig, spec: CageSpec, state_dir: Path) -> CageUnits:
    """What a microVM cage deploys: its external network and its `vm` container."""
    accel = _hypervisor(config).accel
    memory = config.firecracker.mem_mb + OVERHEAD_MIB[accel]
    directory = str(run_dir(state_dir))
    return vm_units(spec, spec.images.proxy, str(state_dir), directory, memory, accel == "kvm")


def images_of(vm_image: str, agent: str) -> Images:
    """What `images.json` records for a microVM cage: the VM's image for both sidecars."""
    return Images(proxy=vm_image, dns=vm_image, agent=agent)
