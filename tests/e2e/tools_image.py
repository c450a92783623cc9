"""The package-manager agent image (images/agent-tools), built once and tagged by its inputs.

Debian packages through mmdebstrap (ImageBuilder.debian_image), then two clients from
files downloaded on the host and checked against the hashes pinned beside the
Containerfile: uv's binary (a wheel, uv.txt) and npm 10 (its registry tarball, npm.txt).
The fake internet runs in this image too: it needs git for `git http-backend`.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from agentcage.cage.image_inputs import cache_dir, digest
from agentcage.cage.images import ImageBuilder
from agentcage.cage.wheelhouse import PIP_FOR_IMAGE

TOOLS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "git", "nodejs", "npm")
CONTEXT = Path(__file__).resolve().parents[2] / "images" / "agent-tools"
PINS = ("Containerfile", "uv.txt", "npm.txt")
# In a subprocess: the build environment (a proxy or CA of this machine) is not the
# test's, which strips such variables.
FETCH = "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])"


def _cached(name: str, pin: str) -> Path:
    return cache_dir() / "agent-tools" / digest(pin) / name


def uv_binary(builder: ImageBuilder) -> Path:
    """uv from the pinned wheel: downloaded with --require-hashes, unpacked once."""
    target = _cached("uv", (CONTEXT / "uv.txt").read_text())
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="agentcage-uv-") as tmp:
        builder.runner.run(
            [
                *PIP_FOR_IMAGE, "download", "--quiet", "--no-deps",
                "--only-binary=:all:", "--require-hashes", "-r", str(CONTEXT / "uv.txt"),
                "-d", tmp,
            ],
            timeout=600,
        )  # fmt: skip
        (wheel,) = Path(tmp).glob("uv-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            (member,) = [n for n in archive.namelist() if n.endswith(".data/scripts/uv")]
            _place(target, archive.read(member))
    return target


def npm_tarball(builder: ImageBuilder) -> Path:
    """npm's registry tarball, checked against the pinned sha512 integrity."""
    pin = (CONTEXT / "npm.txt").read_text()
    url, integrity = pin.split()
    target = _cached("npm.tgz", pin)
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="agentcage-npm-") as tmp:
        download = Path(tmp) / "npm.tgz"
        builder.runner.run([sys.executable, "-c", FETCH, url, str(download)], timeout=600)
        data = download.read_bytes()
    got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != integrity:
        raise AssertionError(f"{url}: integrity {got}, pinned {integrity}")
    _place(target, data)
    return target


def _place(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(target)


def tools_image(builder: ImageBuilder) -> str:
    base = builder.debian_image("agentcage-agent-tools-base", TOOLS_PACKAGES)
    inputs = [(CONTEXT / name).read_bytes() for name in PINS]
    ref = "localhost/agentcage-agent-tools:" + digest(base, *inputs)
    if builder.exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix="agentcage-tools-") as tmp:
        shutil.copy2(uv_binary(builder), Path(tmp) / "uv")
        shutil.copy2(npm_tarball(builder), Path(tmp) / "npm.tgz")
        builder.runner.run(
            [
                "podman", "build", "--quiet", "--pull=never", "-f", str(CONTEXT / "Containerfile"),
                "--build-arg", f"BASE={base}", "-t", ref, tmp,
            ],
            timeout=900,
        )  # fmt: skip
    return ref
