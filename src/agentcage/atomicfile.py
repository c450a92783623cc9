"""Replacing a file so that a reader sees the old or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(
    path: Path, data: bytes | str, mode: int = 0o600, *, owner: tuple[int, int] | None = None
) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then rename it over `path`.

    The file gets `mode` (and `owner`, a (uid, gid) pair) before any byte is written,
    so a secret is never briefly readable by others. Missing parents are created 0700.
    """
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
