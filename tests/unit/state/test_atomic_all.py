"""`write_atomic_all`: several files replaced whole, their fsyncs at once."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from agentcage import atomicfile
from agentcage.atomicfile import write_atomic_all


def test_each_file_is_written_with_its_mode_and_no_temp_is_left(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("old")
    write_atomic_all(
        [(tmp_path / "a", "new", 0o644), (tmp_path / "sub" / "b", b"\x00bytes", 0o600)]
    )
    assert (tmp_path / "a").read_text() == "new"
    assert (tmp_path / "sub" / "b").read_bytes() == b"\x00bytes"
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "sub" / "b").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "sub"]


def test_every_file_is_synced_before_any_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    renamed_after: list[int] = []
    lock = threading.Lock()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            synced.append(fd)

    def replace(src: str, dst: str) -> None:
        renamed_after.append(len(synced))
        real_replace(src, dst)

    monkeypatch.setattr(atomicfile.os, "fsync", fsync)
    monkeypatch.setattr(atomicfile.os, "replace", replace)
    write_atomic_all([(tmp_path / str(n), str(n), 0o600) for n in range(5)])
    assert len(synced) == 5
    assert renamed_after == [5] * 5
    assert [(tmp_path / str(n)).read_text() for n in range(5)] == [str(n) for n in range(5)]


def test_a_failed_fsync_replaces_nothing_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text("old")
    calls = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path / ".b.")):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(atomicfile.os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output"):
        write_atomic_all([(tmp_path / n, "new", 0o600) for n in ("a", "b", "c")])
    assert len(calls) == 3
    assert [(tmp_path / n).read_text() for n in ("a", "b", "c")] == ["old"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_a_file_that_cannot_be_made_replaces_nothing(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("old")
    (tmp_path / "not-a-dir").write_text("")
    with pytest.raises(OSError):
        write_atomic_all(
            [(tmp_path / "a", "new", 0o600), (tmp_path / "not-a-dir" / "b", "new", 0o600)]
        )
    assert (tmp_path / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "not-a-dir"]
