"""The wheelhouse the runtime image installs from: the locked dependencies as wheels.

`pip download --require-hashes` fetches what uv.lock pins as wheels for the image's
platform, not this machine's: CPython 3.11 on Debian 12's glibc, for the architecture
Podman builds on (`ImagePlatform`). A Mac therefore fetches the same Linux wheels as a
Linux host. A package with no wheel for that platform comes as its sdist (checked
against the lock's hash as well): built into a wheel here when this machine is that
platform, else kept under `native/` for the runtime image's native stage, which builds
it on the image's own platform. The directory is named by the digest of the exported
lock and the platform (images.py), so a cached one is found without running pip.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentcage.cage.podman import Runner

# The runtime image's interpreter and C library: Debian 12's python3.11 and glibc 2.36
# (python:3.11-slim-bookworm, the registry base, has the same).
IMAGE_PYTHON = "3.11"
IMAGE_GLIBC_MINOR = 36
# Go's (Podman's) and macOS's names for an architecture -> `uname -m` on Linux, as wheel
# tags spell it.
_ARCH_NAMES = {"amd64": "x86_64", "arm64": "aarch64", "386": "i686"}
# The old names manylinux tags had before PEP 600, by the glibc they stand for.
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
# `uv tool run` fetches pip once into uv's cache. Any interpreter downloads for the given
# target; building an sdist here makes a wheel for the one running pip: the image's.
PIP = ("uv", "tool", "run", "pip")
PIP_FOR_IMAGE = ("uv", "tool", "run", "--python", IMAGE_PYTHON, "pip")
# The wheelhouse's subdirectory for what the native stage builds (images/runtime).
NATIVE = "native"


def uname_arch(name: str) -> str:
    return _ARCH_NAMES.get(name, name)


@dataclass(frozen=True)
class ImagePlatform:
    """Linux on `arch` (uname -m), with the runtime image's Python and glibc."""

    arch: str

    @classmethod
    def from_podman(cls, arch: str) -> ImagePlatform:
        """From `podman info`'s Host.Arch (amd64, arm64)."""
        return cls(uname_arch(arch.strip()))

    @property
    def key(self) -> str:
        """What the wheelhouse's name adds to the lock's digest."""
        return f"cp{IMAGE_PYTHON.replace('.', '')}-manylinux_2_{IMAGE_GLIBC_MINOR}_{self.arch}"

    def manylinux_tags(self) -> list[str]:
        """Every platform tag a wheel for it may carry, newest glibc first.

        pip takes each `--platform` literally (it widens only the old manylinux2014 and
        manylinux2010 names), so the whole range is spelled out: 2_36 down to 2_17 (2_5 on
        x86), each PEP 600 tag followed by its old name where there is one.
        """
        oldest = 5 if self.arch in ("x86_64", "i686") else 17
        tags = []
        for minor in range(IMAGE_GLIBC_MINOR, oldest - 1, -1):
            tags.append(f"manylinux_2_{minor}_{self.arch}")
            if minor in _LEGACY:
                tags.append(f"{_LEGACY[minor]}_{self.arch}")
        return tags

    def pip_target(self) -> list[str]:
        """`pip download` options that select wheels for this platform."""
        abi = "cp" + IMAGE_PYTHON.replace(".", "")
        platforms = [f"--platform={tag}" for tag in self.manylinux_tags()]
        python = [f"--python-version={IMAGE_PYTHON}", "--implementation=cp", f"--abi={abi}"]
        return [*platforms, *python]

    def built_by(self, system: str, machine: str) -> bool:
        """Whether a machine (sys.platform, platform.machine()) builds for this platform:
        only Linux on the same architecture does."""
        return system.startswith("linux") and uname_arch(machine) == self.arch


def this_machine() -> tuple[str, str]:
    """This machine as `ImagePlatform.built_by` takes it."""
    return sys.platform, platform.machine()


def fill_wheelhouse(
    runner: Runner,
    requirements: str,
    target: Path,
    image: ImagePlatform,
    *,
    build_here: bool,
    pip: Sequence[str] | None = None,
) -> None:
    """Download every locked wheel for `image` into TARGET with a hash-pinned
    `requirements.lock`; sdists are built here if `build_here`, else left in
    TARGET/native/. TARGET appears whole or not at all."""
    work = Path(tempfile.mkdtemp(prefix="agentcage-wheels-"))
    try:
        (work / "requirements.txt").write_text(requirements)
        download, wheels = work / "download", work / "wheels"
        # --no-deps (the export is the whole closure) is also what lets pip fall back to
        # an sdist while a target platform is given; --only-binary would refuse one.
        runner.run(
            [
                *(pip or PIP),
                "download",
                "--quiet",
                "--require-hashes",
                "--no-deps",
                *image.pip_target(),
                "-r",
                str(work / "requirements.txt"),
                "-d",
                str(download),
            ],
            timeout=900,
        )
        wheels.mkdir()
        native = wheels / NATIVE
        native.mkdir()
        for artifact in sorted(download.iterdir()):
            if artifact.suffix == ".whl":
                shutil.copy2(artifact, wheels / artifact.name)
            elif build_here:  # an sdist whose hash uv.lock just vouched for; build it once
                build = [*(pip or PIP_FOR_IMAGE), "wheel", "--quiet", "--no-deps"]
                runner.run([*build, "-w", str(wheels), str(artifact)], timeout=900)
            else:
                shutil.copy2(artifact, native / artifact.name)
        lines = []
        for wheel in sorted(wheels.glob("*.whl")):
            name, version = wheel.name.split("-")[:2]
            sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
            lines.append(f"{name}=={version} --hash=sha256:{sha}")
        (wheels / "requirements.lock").write_text("\n".join(lines) + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(wheels, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
