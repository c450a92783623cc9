"""A small cage for a real guest: its units, state, roles and the agent's root drive.

The config is rendered by `build_units(CageSpec)` as `cage create` does; the agent is a
busybox shell script on its own root drive (its workspace volume copied onto it), so
neither Podman nor an image store is needed. Used by tests/integration/vm and
bench/microvm.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from agentcage.cage.ca import ensure_ca
from agentcage.cage.layout import HostPaths, Images, prepare_sidecar_dirs, write_sidecar_config
from agentcage.cage.quadlet import CageSpec, build_units
from agentcage.cage.state import StateStore
from agentcage.cage.topology import Topology
from agentcage.cage.vm.agent_root import agent_root_image
from agentcage.cage.vm.debian_parts import BUSYBOX, unpack
from agentcage.cage.vm.guest_roles import AGENT_ROOT_LABEL, GuestRole, ImageFacts, guest_roles
from agentcage.cage.vm.machine import Drive
from agentcage.config.load import load_config
from tests.support.vm_uplink import GATEWAY

NAME = "vmcage"
AGENT_IMAGE = f"localhost/agentcage-{NAME}-agent:test"
TOPOLOGY = Topology(NAME, 0, "10.89.7.0/24", "10.89.8.0/24")
APPLETS = ("sh", "cat", "grep", "tr", "touch", "wget", "nc", "nslookup", "ls", "sleep", "id")
CONFIG = """\
name: {name}
container:
  image: {image}
  command: ["/bin/sh", "/app/agent.sh"]
  volumes: ["{app}:/app:ro"]
  tmpfs: ["/tmp:rw,noexec,nosuid,size=16M"]
secret_injection:
  - env: ANTHROPIC_API_KEY
    inject_to: [example.com]
domains:
  allow: [example.com]
# passt's gateway: tests/support/vm_uplink.py serves DNS and HTTP there.
dns_servers: ["{gateway}"]
network:
  allow_cidrs: ["{gateway}/32"]
"""


@dataclass(frozen=True)
class GuestCage:
    roles: list[GuestRole]
    state_dir: Path
    agent_drive: Drive
    resolvers: list[str]


def prepare_cage(workdir: Path, script: str, files: dict[str, str] | None = None) -> GuestCage:
    """The cage's state under `workdir`, its roles, and the agent's drive running `script`."""
    app = workdir / "app"
    app.mkdir()
    (app / "agent.sh").write_text(script)
    for name, content in (files or {}).items():
        (app / name).write_text(content)
    config_path = workdir / "cage.yaml"
    config_path.write_text(CONFIG.format(name=NAME, image=AGENT_IMAGE, app=app, gateway=GATEWAY))
    config = load_config(config_path)
    store = StateStore(workdir / "state")
    state_dir = store.path(NAME)
    state_dir.mkdir(parents=True)
    paths = HostPaths.under(state_dir)
    ensure_ca(NAME, paths.ca_dir, paths.ca_public_cert)
    write_sidecar_config(store, config, AGENT_IMAGE)
    prepare_sidecar_dirs(store, NAME)
    images = Images("proxy", "dns", AGENT_IMAGE)
    units = build_units(CageSpec(config, TOPOLOGY, images, paths, ("ANTHROPIC_API_KEY",)))
    roles = guest_roles(units, TOPOLOGY, state_dir, ImageFacts(env={"PATH": "/bin"}))
    agent_unit = units.files[f"{TOPOLOGY.container('agent')}.container"]
    image = workdir / "agent.ext4"
    agent_root_image(_busybox_tree(workdir), agent_unit, state_dir, image)
    drive = Drive("agent", image, True, AGENT_ROOT_LABEL)
    return GuestCage(roles, state_dir, drive, config.effective_dns_servers())


def _busybox_tree(workdir: Path) -> Path:
    busybox = unpack(BUSYBOX, workdir / "parts") / "bin" / "busybox"
    tree = workdir / "tree"
    (tree / "bin").mkdir(parents=True)
    shutil.copy2(busybox, tree / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", tree / "bin" / applet)
    shutil.rmtree(workdir / "parts")
    return tree


def allow_domain(workdir: Path, domain: str) -> None:
    """Add `domain` to the cage's allowlist and re-render the sidecars' config, as
    `agentcage domain add` does for a container cage (the guest then gets it by reload)."""
    path = workdir / "cage.yaml"
    path.write_text(
        path.read_text().replace("allow: [example.com]", f"allow: [example.com, {domain}]")
    )
    write_sidecar_config(StateStore(workdir / "state"), load_config(path), AGENT_IMAGE)
