"""The agent's drive keeps its image's owners and modes when an unprivileged user makes it.

A rootless cage's user unpacks `podman export` as itself: every file becomes theirs, set-id
bits and device nodes are lost. The drive must still be what the tar says, read back from
the image with debugfs.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcage.cage.unit import UnitFile
from agentcage.cage.vm.agent_root import agent_root_from_export
from agentcage.cage.vm.owned_tree import Owners, restore_owners
from agentcage.errors import VmmError

NOBODY = 65534


def _add(tar: tarfile.TarFile, name: str, kind: bytes, owner: tuple[int, int], mode: int,
         data: bytes = b"", device: tuple[int, int] = (0, 0)) -> None:  # fmt: skip
    info = tarfile.TarInfo(name)
    info.type, (info.uid, info.gid), info.mode = kind, owner, mode
    info.devmajor, info.devminor = device
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _export(path: Path) -> None:
    """A small image export: root's files, an agent user's home, set-id, a device node."""
    with tarfile.open(path, "w") as tar:
        _add(tar, "./", tarfile.DIRTYPE, (0, 0), 0o755)
        _add(tar, "./home", tarfile.DIRTYPE, (0, 0), 0o755)
        _add(tar, "./home/agent", tarfile.DIRTYPE, (1000, 1000), 0o700)
        _add(tar, "./home/agent/notes", tarfile.REGTYPE, (1000, 1000), 0o600, b"mine")
        _add(tar, "./usr/bin/su", tarfile.REGTYPE, (0, 0), 0o4755, b"#!/bin/sh\n")
        _add(tar, "./etc/shadow", tarfile.REGTYPE, (0, 42), 0o640, b"root:*:1::::::\n")
        _add(tar, "./etc/locked", tarfile.REGTYPE, (0, 0), 0o000, b"x")
        _add(tar, "./var/big", tarfile.REGTYPE, (100000, 100001), 0o644, b"y")
        _add(tar, "./dev/null", tarfile.CHRTYPE, (0, 0), 0o666, device=(1, 3))


def _as_nobody(work: Path) -> None:
    """agent_root_from_export in a child that is not root (when the test runs as root)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 0
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            agent_root_from_export(work / "export.tar", UnitFile(), work / "state", work / "a.ext4")
        except BaseException:
            (work / "error").write_text(traceback.format_exc())
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    error = work / "error"
    assert os.waitstatus_to_exitcode(status) == 0, error.read_text() if error.exists() else status


def _stat(image: Path, path: str) -> dict[str, str]:
    out = subprocess.run(
        ["debugfs", "-R", f'stat "{path}"', str(image)], capture_output=True, text=True, check=True
    ).stdout
    words = out.replace(":", " ").split()
    fields = {}
    for key in ("User", "Group", "Mode", "Type"):
        fields[key] = words[words.index(key) + 1]
    return fields


@pytest.fixture
def work() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parents are root's 0700 directories.
    path = Path(tempfile.mkdtemp(prefix="agentcage-owned-"))
    _export(path / "export.tar")
    if os.geteuid() == 0:
        for owned in (path, path / "export.tar"):
            os.chown(owned, NOBODY, NOBODY)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_an_unprivileged_user_makes_the_agent_drive_with_the_images_owners(work: Path) -> None:
    _as_nobody(work)
    image = work / "a.ext4"
    assert not (work / "export.tar").exists()
    expected = {
        "/": ("0", "0", "0755"),
        "/home/agent": ("1000", "1000", "0700"),
        "/home/agent/notes": ("1000", "1000", "0600"),
        "/usr/bin/su": ("0", "0", "04755"),
        "/etc/shadow": ("0", "42", "0640"),
        "/etc/locked": ("0", "0", "0000"),
        "/var/big": ("100000", "100001", "0644"),
        "/dev/null": ("0", "0", "0666"),
        # Made for the guest's mounts, not in the export: root's.
        "/proc": ("0", "0", None),
    }
    for path, (uid, gid, mode) in expected.items():
        got = _stat(image, path)
        assert (got["User"], got["Group"]) == (uid, gid), (path, got)
        if mode is not None:
            assert got["Mode"] == mode, (path, got)
    device = subprocess.run(
        ["debugfs", "-R", "stat /dev/null", str(image)], capture_output=True, text=True, check=True
    ).stdout
    assert "character special" in device and "Device major/minor number: 01:03" in device


def test_a_name_debugfs_cannot_quote_is_refused(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / 'a"b').mkdir(parents=True)
    with pytest.raises(VmmError, match="quote"):
        restore_owners(tmp_path / "unused.ext4", tree, Owners())
