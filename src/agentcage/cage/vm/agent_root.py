"""The agent's root drive: its image's files, its read-only bind mounts, as one ext4 image.

The tree is the agent image unpacked (`podman export`, or any directory); this adds what the
agent's unit mounts: each read-only bind mount's source is copied to its target (a snapshot
taken when the drive is made: a change on the host reaches the agent at the next create or
update), and an empty mount point for everything the guest mounts at run time (state files
such as the CA certificate, /etc/resolv.conf, named volumes, tmpfs, /proc, /dev), since the
drive is read-only in the guest. Then `mkfs.ext4 -d`, no root mount or loop device, and the
export's owners and modes put back from its tar headers (owned_tree.py), so a rootless
cage's user makes the same drive as root.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from agentcage.cage.unit import UnitFile
from agentcage.cage.vm.guest_roles import AGENT_ROOT_LABEL
from agentcage.cage.vm.owned_tree import Owners, unpack_owned
from agentcage.cage.vm.rootfs import ext4_image


def _point(tree: Path, target: str, is_dir: bool) -> Path:
    path = tree / target.lstrip("/")
    if path.is_symlink() or (path.exists() and path.is_dir() != is_dir):
        # A symlink would lead the guest's mount elsewhere in the tree (or nowhere).
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return path


def agent_root_image(
    tree: Path, agent: UnitFile, state_dir: Path, image: Path, owners: Owners | None = None
) -> None:
    """`image` from `tree` (changed in place; `owners` from its tar) and the agent's mounts."""
    for value in agent.get("Container", "Volume"):
        assert isinstance(value, str)
        source, target, *rest = value.split(":")
        host = Path(source)
        inside_state = host == state_dir or state_dir in host.parents
        named = source.endswith(".volume")  # a drive of its own, bound there in the guest
        # A writable bind mount is shared live (virtiofs.py): only its mount point here.
        shared = not named and not inside_state and "ro" not in "".join(rest).split(",")
        path = _point(tree, target, named or shared or host.is_dir())
        if inside_state or named or shared:
            continue  # mounted in the guest from its copy of the state, its drive or share
        if host.is_dir():
            shutil.copytree(host, path, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(host, path)
    if agent.get("Container", "DNS"):
        _point(tree, "/etc/resolv.conf", False)
    for value in agent.get("Container", "Tmpfs"):
        assert isinstance(value, str)
        _point(tree, value.split(":")[0], True)
    for directory in ("/proc", "/dev", "/tmp"):
        _point(tree, directory, True)
    ext4_image(tree, image, AGENT_ROOT_LABEL, slack_mib=8, owners=owners)


def agent_root_from_export(archive: Path, agent: UnitFile, state_dir: Path, target: Path) -> None:
    """`target` from an export of the agent's image (`archive`, removed once unpacked)."""
    with tempfile.TemporaryDirectory(prefix="agentcage-agent-root-") as tmp:
        tree = Path(tmp) / "tree"
        owners = unpack_owned(archive, tree)
        archive.unlink()
        # Made beside and renamed: on `cage update` the running guest still reads the old.
        fresh = target.with_suffix(".new")
        agent_root_image(tree, agent, state_dir, fresh, owners)
        fresh.replace(target)
