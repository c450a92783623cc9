"""A real `pip download` picks the images' platform's wheel from a local index.

The index is a directory holding one tiny package's wheels for x86_64, aarch64 and macOS
(made here, nothing downloaded): whatever machine runs it, the wheelhouse gets the Linux
wheel of the arch Podman builds on, checked against the hashes it was given.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile
from pathlib import Path

import pytest

from agentcage.cage.podman import SubprocessRunner
from agentcage.cage.wheelhouse import ImagePlatform, fill_wheelhouse
from agentcage.errors import PodmanError

TAGS = {
    "x86_64": "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "aarch64": "cp311-cp311-manylinux_2_28_aarch64",
    "macos": "cp311-cp311-macosx_11_0_arm64",
    "newer-glibc": "cp311-cp311-manylinux_2_39_aarch64",
}


def _wheel(index: Path, tag: str) -> Path:
    """tiny 1.0 as a wheel with `tag`: just enough metadata for pip."""
    path = index / f"tiny-1.0-{tag}.whl"
    files = {
        "tiny.py": "VALUE = 1\n",
        "tiny-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n",
        "tiny-1.0.dist-info/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n",
    }
    record = []
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
            sha = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
            record.append(f"{name},sha256={sha.decode()},{len(text)}")
        archive.writestr("tiny-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture
def index(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "index").mkdir()
    return {name: _wheel(tmp_path / "index", tag) for name, tag in TAGS.items()}


def _fill(tmp_path: Path, index: dict[str, Path], arch: str, hashes: list[Path]) -> Path:
    lock = " ".join(f"--hash=sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in hashes)
    env = {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(tmp_path / "index"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_CONFIG_FILE": os.devnull,
    }
    target = tmp_path / f"house-{arch}"
    fill_wheelhouse(
        SubprocessRunner(env=env),
        f"tiny==1.0 {lock}\n",
        target,
        ImagePlatform(arch),
        build_here=False,
        pip=(sys.executable, "-m", "pip"),
    )
    return target


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_wheel_of_the_images_arch_is_chosen(
    tmp_path: Path, index: dict[str, Path], arch: str
) -> None:
    # Every wheel's hash is allowed: the platform alone decides (not macOS, nor a glibc
    # newer than Debian 12's).
    house = _fill(tmp_path, index, arch, list(index.values()))
    assert sorted(p.name for p in house.glob("*.whl")) == [index[arch].name]
    sha = hashlib.sha256(index[arch].read_bytes()).hexdigest()
    assert (house / "requirements.lock").read_text() == f"tiny==1.0 --hash=sha256:{sha}\n"


def test_a_wheel_whose_hash_the_lock_does_not_name_is_refused(
    tmp_path: Path, index: dict[str, Path]
) -> None:
    # Only the macOS wheel's and the x86_64 one's hashes: the aarch64 wheel is not taken.
    with pytest.raises(PodmanError):
        _fill(tmp_path, index, "aarch64", [index["macos"], index["x86_64"]])
    assert not (tmp_path / "house-aarch64").exists()
