"""The local registry (Debian's `docker-registry` on loopback) and a Podman pointed at it,
with two tiny images `localhost/t:a` and `localhost/t:b` that differ in one file."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry import LocalRegistry, PodmanEnv, local_registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    with local_registry(tmp_path) as running:
        yield running


@pytest.fixture
def podman(tmp_path: Path, registry: LocalRegistry) -> Iterator[PodmanEnv]:
    env = PodmanEnv.make(tmp_path, registry, dict(os.environ), own_storage=True)
    for name in ("a", "b"):  # two tiny images that differ in one file
        tree = tmp_path / f"tree-{name}"
        tree.mkdir()
        (tree / "which").write_text(name)
        with tarfile.open(tmp_path / f"{name}.tar", "w") as tar:
            tar.add(tree / "which", arcname="which")
        env.run("podman", "import", "--quiet", str(tmp_path / f"{name}.tar"), f"localhost/t:{name}")
    yield env
    env.run("podman", "rmi", "--all", "--force", check=False)  # its own store only
