"""The guest's parts from Debian's archive, pinned: kernel and busybox, by version and SHA-256.

`apt-get download` fetches through the host's own apt sources (so its mirrors, proxy and
signatures apply) and the pinned digest then decides: a package whose .deb differs from the
pin is refused, whatever apt thought of it. `dpkg -x` unpacks without installing or running
maintainer scripts, so no root and no change to the host.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from agentcage.errors import VmmError


@dataclass(frozen=True)
class DebianPart:
    package: str
    version: str
    sha256: str

    @property
    def spec(self) -> str:
        return f"{self.package}={self.version}"


# The kernel linux-image-cloud-amd64 depends on (`agentcage deps check` follows it).
KERNEL = DebianPart(
    "linux-image-6.1.0-50-cloud-amd64",
    "6.1.176-1",
    "efe19f605b6f54a8352e68d85a629abb2d30b72a085faef603a9152590baa791",
)
KERNEL_RELEASE = "6.1.0-50-cloud-amd64"
# The ELF kernel inside that package's vmlinuz (vmlinux.py takes it out for Firecracker);
# the same bytes `unlz4` gives for the payload. A different result is a decoder bug.
VMLINUX_SHA256 = "004ff15e4919bfb4e1569e8b87f48a85d4ede9658c6eefffd8a21d5199f26aba"
BUSYBOX = DebianPart(
    "busybox-static",
    "1:1.35.0-4+deb12u1+b1",
    "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744",
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The build tools `run_tool` calls, by the Debian package that has them.
TOOL_PACKAGES = {
    "mkfs.ext4": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "mmdebstrap": "mmdebstrap",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
}


def missing_tool(name: str) -> VmmError:
    return VmmError(
        f"`{name}` is not installed; a microVM cage's drives are made where agentcage runs",
        hint=f"install it (Debian/Ubuntu: `apt-get install {TOOL_PACKAGES.get(name, name)}`); "
        "`agentcage host check --microvm` lists what is missing",
    )


def run_tool(argv: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    """A build tool; its failure is a `VmmError` carrying the tool's own words."""
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise missing_tool(argv[0]) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VmmError(f"`{argv[0]}` could not run: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise VmmError(f"`{' '.join(argv[:3])} ...` failed ({done.returncode}): {' | '.join(tail)}")
    return done.stdout


def check_pin(deb: Path, part: DebianPart) -> None:
    actual = sha256_of(deb)
    if actual != part.sha256:
        raise VmmError(
            f"{deb.name} has SHA-256 {actual}, not the pinned {part.sha256}",
            hint="the archive changed under the pin; update agentcage/cage/vm/debian_parts.py "
            "only after checking the new package",
        )


def unpack(part: DebianPart, workdir: Path) -> Path:
    """Download `part`, check its digest, and unpack it into `workdir/<package>/`."""
    downloads = workdir / "debs"
    downloads.mkdir(parents=True, exist_ok=True)
    run_tool(["apt-get", "download", "-q", part.spec], cwd=downloads)
    matches = sorted(downloads.glob(f"{part.package}_*.deb"))
    if len(matches) != 1:
        raise VmmError(f"`apt-get download {part.spec}` left {len(matches)} .deb files")
    check_pin(matches[0], part)
    target = workdir / part.package
    run_tool(["dpkg-deb", "-x", str(matches[0]), str(target)])
    return target
