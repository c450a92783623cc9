"""What an image's tag is made from: digests of its inputs (sources, lock lines, files).

A tag that hashes every input lets a build whose inputs did not change be skipped, and a
cached wheelhouse or image be found without running pip or podman.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from agentcage.errors import PodmanError


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:16]


def source_root() -> Path:
    """The agentcage checkout images are built from (wheel, lock file, Containerfiles)."""
    env = os.environ.get("AGENTCAGE_SOURCE")
    root = Path(env) if env else Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file() or not (root / "images").is_dir():
        raise PodmanError(
            f"{root} is not an agentcage source checkout; images are built from one",
            hint="set AGENTCAGE_SOURCE to the checkout directory",
        )
    return root


def debian_lock(suite: str, packages: Iterable[str] | None = None) -> tuple[str, ...]:
    """`suite`'s lines of the checkout's images/debian.lock (Debian package versions
    recorded by `agentcage deps check --update`), as a part of the tags of the images
    built from that suite: recording newer versions rebuilds them. Only `packages`' lines
    when given. Nothing without the file (or a checkout)."""
    try:
        path = source_root() / "images" / "debian.lock"
    except PodmanError:
        return ()
    if not path.is_file():
        return ()
    wanted = None if packages is None else set(packages)
    chosen = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split(" ")
        if fields[0] == suite and (wanted is None or (len(fields) > 1 and fields[1] in wanted)):
            chosen.append(line)
    return tuple(chosen)


def tree_digest(root: Path, paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentcage"
