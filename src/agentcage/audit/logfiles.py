"""The files of one audit log: the live file and its rotations, `FILE.1` (newest) to `FILE.N`.

The writer shifts them (`rotate`); the viewer reads them oldest first (`generations`).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rotation:
    """Start a new file before a line would take the live one past `max_bytes`; keep
    `keep` rotated files. `max_bytes` 0: never rotate (an outside tool may, with SIGHUP)."""

    max_bytes: int = 0
    keep: int = 1

    def due(self, size: int, adding: int) -> bool:
        # A file holds at least one line, so a line longer than max_bytes still fits.
        return self.max_bytes > 0 and size > 0 and size + adding > self.max_bytes


def rotated(path: Path, generation: int) -> Path:
    """`FILE.<generation>`; generation 0 is the live file."""
    return path if generation == 0 else path.with_name(f"{path.name}.{generation}")


def generations(path: Path) -> list[Path]:
    """The log's existing files, oldest first, the live file (if it exists) last.

    Rotated files are those named `FILE.<number>`, whatever the keep count was when
    they were written; gaps are skipped.
    """
    files = [p for _, p in reversed(_numbered(path))]
    if path.is_file():
        files.append(path)
    return files


def _numbered(path: Path) -> list[tuple[int, Path]]:
    """The rotated files, by generation (newest first)."""
    pattern = re.compile(re.escape(path.name) + r"\.([1-9][0-9]{0,5})")
    numbered: list[tuple[int, Path]] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name)
            if match and entry.is_file():
                numbered.append((int(match.group(1)), Path(entry.path)))
    return sorted(numbered)


def rotate(path: Path, keep: int) -> None:
    """Shift `FILE.k` to `FILE.k+1`, then `FILE` to `FILE.1`; files past `keep` are removed.

    Renames only: a writer's descriptor follows its file, so a line being written
    lands whole in whichever generation that file has become. `OSError` if the live
    file cannot be moved; the caller keeps writing where it was.
    """
    for generation, old in reversed(_numbered(path)):  # the highest number first
        if generation >= keep:  # also those a larger keep left behind
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)
        else:
            os.rename(old, rotated(path, generation + 1))
    os.rename(path, rotated(path, 1))
