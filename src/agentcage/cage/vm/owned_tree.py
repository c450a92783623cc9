"""A tar unpacked by any user, and its files' owners and modes put back into an ext4 image.

`mkfs.ext4 -d DIR` copies each file's owner and mode from the directory as the host sees
it. A tar unpacked by root keeps its owners; unpacked by anyone else (a rootless cage's
user), every file becomes theirs, set-id bits are lost and device nodes cannot be made.
So the tar's headers are read instead: the tree is unpacked readable by the caller, the
image made from it, and `debugfs -w` then sets each inode's uid, gid and mode from its
header (entries added to the tree after unpacking get root's), and makes the device
nodes and FIFOs. One path for root and everyone else: the image is the same either way.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from agentcage.cage.vm.debian_parts import missing_tool
from agentcage.errors import VmmError

# debugfs takes a double-quoted path; these it cannot carry.
_UNQUOTABLE = frozenset('"\n\r\\')


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    mode: int  # permission bits with set-id and sticky (07777)


@dataclass(frozen=True)
class Node:
    """A device node or FIFO: made in the image, never on the host."""

    kind: str  # debugfs's mknod type: c, b or p
    major: int
    minor: int


@dataclass
class Owners:
    """What the tar's headers say, by absolute path inside the tree."""

    files: dict[str, Owner] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)


def _inside(name: str) -> str:
    return "/" + os.path.normpath("/" + name).lstrip("/")


def _readable(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tar_filter's path checks (nothing outside `dest`), the owner left to the caller, and
    modes the caller can read back: the real ones go into the image from the headers."""
    member = tarfile.tar_filter(member, dest)
    extra = 0o700 if member.isdir() else 0o600
    return member.replace(mode=(member.mode or 0) | extra, deep=False)


def unpack_owned(archive: Path, tree: Path) -> Owners:
    """`archive` into `tree`; what its headers say about each entry."""
    owners = Owners()
    with tarfile.open(archive) as tar:
        members = []
        for member in tar:
            path = _inside(member.name)
            if member.ischr() or member.isblk() or member.isfifo():
                kind = "c" if member.ischr() else "b" if member.isblk() else "p"
                owners.nodes[path] = Node(kind, member.devmajor, member.devminor)
                (tree / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            else:
                members.append(member)
            owners.files[path] = Owner(member.uid, member.gid, member.mode & 0o7777)
        tar.extractall(tree, members, numeric_owner=True, filter=_readable)
    return owners


def _quoted(path: str) -> str:
    if _UNQUOTABLE & set(path):
        raise VmmError(f"{path!r}: a file name with a quote, backslash or line break")
    return f'"{path}"'


def _commands(tree: Path, owners: Owners) -> list[str]:
    """debugfs commands that make the image's inodes what the headers say."""
    lines = []
    for path, node in owners.nodes.items():
        numbers = "" if node.kind == "p" else f" {node.major} {node.minor}"
        # debugfs 1.47's mknod links a name with a slash nowhere: make it from its parent.
        parent, name = path.rsplit("/", 1)
        lines += [f"cd {_quoted(parent or '/')}", f"mknod {_quoted(name)} {node.kind}{numbers}"]
        kind = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[node.kind]
        owner = owners.files[path]
        lines += _set(path, (-1, -1, -1), (owner.uid, owner.gid, kind | owner.mode))
    for directory, dirs, files in os.walk(tree):
        for local in (Path(directory, name) for name in (*dirs, *files)):
            lines += _entry(tree, local, owners)
    return [*_entry(tree, tree, owners), *lines, "cd /"]


def _entry(tree: Path, local: Path, owners: Owners) -> list[str]:
    info = local.lstat()
    path = _inside(str(local.relative_to(tree)))
    owner = owners.files.get(path, Owner(0, 0, stat.S_IMODE(info.st_mode)))
    written = (info.st_uid, info.st_gid, info.st_mode)
    return _set(path, written, (owner.uid, owner.gid, stat.S_IFMT(info.st_mode) | owner.mode))


def _set(path: str, written: tuple[int, int, int], wanted: tuple[int, int, int]) -> list[str]:
    fields, quoted = ("uid", "gid", "mode"), _quoted(path)  # every name, changed or not
    return [
        f"set_inode_field {quoted} {name} {f'0{value:o}' if name == 'mode' else value}"
        for name, old, value in zip(fields, written, wanted, strict=True)
        if old != value
    ]


def restore_owners(image: Path, tree: Path, owners: Owners) -> None:
    """The headers' owners and modes, and the device nodes, written into `image` (made
    from `tree` by `mkfs.ext4 -d`)."""
    script = "\n".join(_commands(tree, owners)) + "\n"
    try:
        done = subprocess.run(
            ["debugfs", "-w", "-f", "-", str(image)],
            input=script,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise missing_tool("debugfs") from exc
    # debugfs exits 0 whatever a command said; anything on stderr but its banner is an error.
    errors = [line for line in done.stderr.splitlines() if not line.startswith("debugfs ")]
    if done.returncode != 0 or errors:
        raise VmmError(f"debugfs on {image}: {' '.join(errors[:5]) or done.returncode}")
