"""ext4 images for the guest, without root mounts or loop devices.

`mkfs.ext4 -d DIR` writes a filled filesystem straight into an image file, so neither the
root filesystem (a Debian tree from mmdebstrap plus the guest agent) nor the secrets drive
ever needs a mount on the host. The secrets image is made per boot from a directory the
caller controls and deleted with the VM; it is never part of the cached root image.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from agentcage.cage.contract import (
    AGENT_CA,
    AUDIT_DIR,
    CA_DIR,
    CONFIG_DIR,
    FINGERPRINTS_DIR,
    SIDECAR_USER,
    UPSTREAM_CA,
)
from agentcage.cage.vm.debian_parts import run_tool
from agentcage.cage.vm.initramfs import GUEST_AGENT_PATH
from agentcage.cage.vm.machine import SECRETS_LABEL
from agentcage.cage.vm.owned_tree import Owners, restore_owners
from agentcage.errors import VmmError

_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

SUITE = "bookworm"
# python3 runs the guest agent and, in /opt/agentcage, the proxy and DNS roles (the same
# venv as the runtime image: VENV_BIN in contract.py); dnsmasq-base serves behind the DNS
# role's front, as in the runtime image; iproute2 sets up the one interface; nftables
# carries default deny's redirects (cage/steering.py calls `nft`, as in the runtime image).
PACKAGES = (
    "python3",
    "python3-venv",
    "dnsmasq-base",
    "iproute2",
    "nftables",
    "ca-certificates",
)
_SLIM = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
VENV = "/opt/agentcage"
SITE_PACKAGES = f"{VENV}/lib/python3.11/site-packages"
SIDECAR_MOUNT_POINTS = (
    CONFIG_DIR,
    CA_DIR,
    AUDIT_DIR,
    FINGERPRINTS_DIR,
    str(Path(UPSTREAM_CA).parent),
)


def debootstrap_tree(target: Path, wheelhouse: Path) -> None:
    """A minimal Debian tree with the runtime venv, as a tar at `target` (not there yet).

    The venv is installed inside the tree by its own Python, offline, from the hash-checked
    wheelhouse the runtime image uses (images.py), with the same pip flags: one set of
    dependencies for both isolation modes. mmdebstrap's hooks run in its own namespace,
    so this needs no more privilege than mmdebstrap does: root, or a user with sub-UIDs
    (its `unshare` mode). A tar, because only its headers keep the tree's owners for a
    user who is not root (owned_tree.py).
    """
    argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), "--quiet"]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in _SLIM]
    pip = (
        f"{VENV}/bin/pip install --quiet --no-cache-dir --disable-pip-version-check "
        "--no-index --find-links /tmp/wheelhouse --require-hashes "
        "-r /tmp/wheelhouse/requirements.lock"
    )
    argv += [
        f"--customize-hook=copy-in {wheelhouse} /tmp",
        f'--customize-hook=mv "$1/tmp/{wheelhouse.name}" "$1/tmp/wheelhouse"',
        f'--customize-hook=chroot "$1" python3 -m venv {VENV}',
        f'--customize-hook=chroot "$1" {pip}',
        '--customize-hook=rm -rf "$1/tmp/wheelhouse"',
    ]
    # mmdebstrap picks the output format by the name's suffix.
    archive = target.with_name(f"{target.name}.tar")
    run_tool([*argv, SUITE, str(archive)], timeout=1800)
    archive.rename(target)


def install_agentcage(tree: Path, package: Path) -> None:
    """The agentcage package's Python sources into the venv (the C accelerator is optional).

    Copied rather than built into the cached tree so that a change to the sources costs
    one mkfs, not a new Debian tree.
    """
    target = tree / SITE_PACKAGES.lstrip("/") / "agentcage"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(
        package,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyc"),
    )
    # The console script a wheel install would have written (pyproject's [project.scripts]).
    script = tree / VENV.lstrip("/") / "bin" / "agentcage"
    script.write_text(
        f"#!{VENV}/bin/python\nimport sys\nfrom agentcage.cli.main import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)


def ext4_image(
    tree: Path,
    image: Path,
    label: str,
    slack_mib: int = 16,
    slack_inodes: int = 64,
    owners: Owners | None = None,
) -> None:
    """`image` holding `tree`, sized to fit with `slack_mib` and `slack_inodes` to spare.

    With `owners` (the tar `tree` was unpacked from), each file's owner and mode are the
    tar's, whoever unpacked it; without, the host's as `mkfs.ext4 -d` finds them.
    """
    used = sum(p.lstat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    inodes = sum(1 for _ in tree.rglob("*")) + slack_inodes
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
    if owners is not None:
        restore_owners(image, tree, owners)


def install_agent(tree: Path, agent_source: Path) -> None:
    """The guest agent and, beside it, the confinement it applies to the roles."""
    target = tree / GUEST_AGENT_PATH.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    for source in (agent_source, agent_source.with_name("guest_sandbox.py")):
        shutil.copyfile(source, target.with_name(source.name))
        target.with_name(source.name).chmod(0o644)
    # Mount points of the sidecars' volumes, at the paths their containers have them
    # (contract.py): the root is read-only, so they must exist before the guest boots.
    for directory in SIDECAR_MOUNT_POINTS:
        (tree / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
    # File mounts: the proxy's upstream CA, and the agent's CA for `cage verify`'s checks,
    # which run on this root with the agent's view (guest_cage.verify_network).
    for mount_point in (UPSTREAM_CA, AGENT_CA):
        (tree / mount_point.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tree / mount_point.lstrip("/")).touch()


def secrets_image(values: Mapping[str, str], image: Path) -> None:
    """The secrets drive: one file per secret, 0400 and owned by the proxy's user.

    As container mode mounts them (uid 10000, mode 0400), so only the proxy reads them in
    the guest. The values are staged in a 0700 directory beside `image` (put it on a
    tmpfs, such as the VM's run directory under /run) and removed as soon as the image
    exists; the image itself is 0600. Ownership needs root on the host: without it the
    files keep the caller's uid, and the guest side must then hand them over.
    """
    staging = Path(tempfile.mkdtemp(prefix=".secrets-", dir=image.parent))
    try:
        for name, value in values.items():
            if not _FILE_NAME.match(name):
                raise VmmError(f"secret name {name!r} cannot be a file name on the secrets drive")
            fd = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "w") as handle:
                handle.write(value)
            if os.geteuid() == 0:
                os.chown(staging / name, int(SIDECAR_USER), int(SIDECAR_USER))
        old_umask = os.umask(0o077)
        try:
            ext4_image(staging, image, SECRETS_LABEL, slack_mib=2)
        finally:
            os.umask(old_umask)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
