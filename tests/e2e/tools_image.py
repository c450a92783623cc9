"""The package-manager agent image (images/agent-tools), built once and tagged by its inputs.

Debian packages through mmdebstrap (ImageBuilder.debian_image), then uv's binary from a
wheel pinned by hash in images/agent-tools/uv.txt. The fake internet runs in it too: it
needs git for `git http-backend`.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from agentcage.cage.images import ImageBuilder, cache_dir, digest

TOOLS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "git", "nodejs", "npm")
CONTEXT = Path(__file__).resolve().parents[2] / "images" / "agent-tools"


def uv_binary(builder: ImageBuilder) -> Path:
    """uv from the pinned wheel: downloaded with --require-hashes, unpacked once."""
    pin = (CONTEXT / "uv.txt").read_bytes()
    target = cache_dir() / "agent-tools" / digest(pin) / "uv"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="agentcage-uv-") as tmp:
        builder.runner.run(
            [
                "uvx", "--python", "3.11", "pip", "download", "--quiet", "--no-deps",
                "--only-binary=:all:", "--require-hashes", "-r", str(CONTEXT / "uv.txt"),
                "-d", tmp,
            ],
            timeout=600,
        )  # fmt: skip
        (wheel,) = Path(tmp).glob("uv-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            (member,) = [n for n in archive.namelist() if n.endswith(".data/scripts/uv")]
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            partial.write_bytes(archive.read(member))
            partial.chmod(0o755)
            partial.replace(target)
    return target


def tools_image(builder: ImageBuilder) -> str:
    base = builder.debian_image("agentcage-agent-tools-base", TOOLS_PACKAGES)
    containerfile = CONTEXT / "Containerfile"
    ref = "localhost/agentcage-agent-tools:" + digest(
        base, containerfile.read_bytes(), (CONTEXT / "uv.txt").read_bytes()
    )
    if builder.exists(ref):
        return ref
    uv = uv_binary(builder)
    with tempfile.TemporaryDirectory(prefix="agentcage-tools-") as tmp:
        shutil.copy2(uv, Path(tmp) / "uv")
        builder.runner.run(
            [
                "podman", "build", "--quiet", "--pull=never", "-f", str(containerfile),
                "--build-arg", f"BASE={base}", "-t", ref, tmp,
            ],
            timeout=900,
        )  # fmt: skip
    return ref
