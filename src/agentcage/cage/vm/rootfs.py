"""ext4 images for the guest, without root mounts or loop devices.

`mkfs.ext4 -d DIR` writes a filled filesystem straight into an image file, so neither the
root filesystem (a Debian tree from mmdebstrap plus the guest agent) nor the secrets drive
ever needs a mount on the host. The secrets image is made per boot from a directory the
caller controls and deleted with the VM; it is never part of the cached root image.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agentcage.cage.vm.debian_parts import run_tool
from agentcage.cage.vm.initramfs import GUEST_AGENT_PATH

SUITE = "bookworm"
# python3 runs the guest agent; iproute2 sets up the one interface.
PACKAGES = ("python3", "iproute2")
_SLIM = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")


def debootstrap_tree(target: Path) -> None:
    """A minimal Debian tree in `target` (which must not exist yet)."""
    argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), "--quiet"]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in _SLIM]
    run_tool([*argv, SUITE, str(target)], timeout=900)


def ext4_image(tree: Path, image: Path, label: str, slack_mib: int = 16) -> None:
    """`image` holding `tree`, sized to fit with `slack_mib` to spare."""
    used = sum(p.lstat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    inodes = sum(1 for _ in tree.rglob("*")) + 64
    size_mib = used * 5 // 4 // (1 << 20) + slack_mib
    image.unlink(missing_ok=True)
    run_tool(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            label,
            "-N",
            str(inodes + inodes // 4),
            # No journal: the root is mounted read-only and the secrets drive is throwaway.
            "-O",
            "^has_journal",
            "-d",
            str(tree),
            str(image),
            f"{size_mib}M",
        ]
    )


def install_agent(tree: Path, agent_source: Path) -> None:
    target = tree / GUEST_AGENT_PATH.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(agent_source, target)
    target.chmod(0o644)
