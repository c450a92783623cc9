"""The wheelhouse the runtime image installs from: the locked dependencies as wheels.

`pip download --require-hashes` fetches what uv.lock pins; an sdist among them is built
into a wheel here once. The directory is named by the digest of the exported lock
(images.py), so a cached one is found without running pip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from agentcage.cage.podman import Runner


def fill_wheelhouse(runner: Runner, requirements: str, target: Path) -> None:
    """Download (or build once) every locked wheel into TARGET with a hash-pinned
    `requirements.lock`; TARGET appears whole or not at all."""
    work = Path(tempfile.mkdtemp(prefix="agentcage-wheels-"))
    try:
        (work / "requirements.txt").write_text(requirements)
        download, wheels = work / "download", work / "wheels"
        pip = ["uv", "tool", "run", "--python", "3.11", "pip"]
        runner.run(
            [
                *pip,
                "download",
                "--quiet",
                "--require-hashes",
                "--no-deps",
                "-r",
                str(work / "requirements.txt"),
                "-d",
                str(download),
            ],
            timeout=900,
        )
        wheels.mkdir()
        for artifact in sorted(download.iterdir()):
            if artifact.suffix == ".whl":
                shutil.copy2(artifact, wheels / artifact.name)
            else:  # an sdist whose hash uv.lock just vouched for; build it here once
                runner.run(
                    [*pip, "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(artifact)],
                    timeout=900,
                )
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
