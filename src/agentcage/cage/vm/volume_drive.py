"""A microVM cage's named volumes: one writable ext4 image each, a virtio-blk drive in the guest.

Container mode gives each `container.named_volumes` entry a Podman volume; a microVM cage
gives it a sparse file `vm/volumes/NAME.ext4` in the cage's state directory, made once
(by `cage create`, or by the first `cage update` that names it) and then only attached:
`cage stop`/`start`, `update` and every boot of the guest find what the agent wrote.
`cage destroy` removes it with the state, as container mode removes the cage's Podman
volumes. The image is made without root or a loop device (`mkfs.ext4` on a plain file), its
root directory owned by the agent's uid and gid (what Podman does to a new volume the
container's user mounts), and holds nothing else: no secret ever lands on it.

The guest finds each drive by its ext4 label, which is derived from the volume's name
(ext4 allows 16 bytes, volume names are longer), and mounts it writable, `nodev,nosuid`,
under `GUEST_VOLUMES`; the agent's sandbox binds it at its target.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from agentcage.cage.vm.debian_parts import run_tool
from agentcage.cage.vm.machine import Drive

VOLUMES_DIR = "volumes"  # in the cage's `vm/` directory
# The size the agent sees. The file is sparse: the host's disk holds only what is written
# (about 4 MiB for a new one), so a generous ceiling costs nothing until used.
VOLUME_SIZE_MIB = 8192
# Where the guest agent mounts each volume drive: under guest_roles.RUN_ROOT, its tmpfs.
GUEST_VOLUMES = "/run/agentcage/volumes"


def volume_label(name: str) -> str:
    """The ext4 label the guest finds the drive by: 16 bytes, stable for the name."""
    return "vol-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def volume_drive(run_dir: Path, name: str) -> Drive:
    label = volume_label(name)
    return Drive(label.replace("-", "_"), volume_path(run_dir, name), False, label)


def volume_path(run_dir: Path, name: str) -> Path:
    return run_dir / VOLUMES_DIR / f"{name}.ext4"


def guest_mount_point(name: str) -> str:
    return f"{GUEST_VOLUMES}/{volume_label(name)}"


def ensure_volume(run_dir: Path, name: str, uid: int, gid: int) -> bool:
    """Make the volume's image unless it exists; True when it was made now."""
    path = volume_path(run_dir, name)
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fresh = path.with_suffix(".new")
    fresh.unlink(missing_ok=True)
    with fresh.open("wb") as handle:
        os.truncate(handle.fileno(), VOLUME_SIZE_MIB << 20)
    run_tool(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            volume_label(name),
            # The agent is not root: blocks kept for root would be space it never gets.
            "-m",
            "0",
            "-E",
            f"root_owner={uid}:{gid},lazy_itable_init=1,lazy_journal_init=1,nodiscard",
            str(fresh),
        ]
    )
    fresh.chmod(0o600)
    # Renamed once whole: a create that fails half way leaves no image that looks made.
    fresh.replace(path)
    return True
