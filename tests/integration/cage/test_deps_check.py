"""`agentcage deps check [--update]` against local sources only: a `docker-registry` on
loopback, a simple index served on loopback, and Debian `Packages` files on disk.

The checkout is a small stand-in with the files deps reads: pyproject.toml, uv.lock,
src/agentcage/cage/images.py (a digest pin, the suite, package names), the test image's
uv and npm pins. The npm registry's document for npm is a file the same server serves.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proxy import run_cli
from tests.support.pyindex import PackageIndex
from tests.support.registry import LocalRegistry, PodmanEnv

pytestmark = pytest.mark.integration

TAG = "agentcage-test/base:bookworm"
MAIN = """Package: python3
Version: 3.11.2-1+b1
Architecture: amd64

Package: dnsmasq-base
Version: 2.90-4~deb12u1
Architecture: amd64

Package: curl
Version: 7.88.1-10+deb12u8
Architecture: amd64

Package: linux-image-cloud-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-cloud-amd64 (= 6.1.176-1)

Package: linux-image-6.1.0-50-cloud-amd64
Version: 6.1.176-1
SHA256: {old_kernel}

Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
SHA256: {busybox}
"""
SECURITY = """Package: dnsmasq-base
Version: 2.90-4~deb12u2
Architecture: amd64

Package: curl
Version: 7.88.1-10+deb12u12
Architecture: amd64

Package: linux-image-cloud-amd64
Version: 6.1.180-1
Depends: linux-image-6.1.0-51-cloud-amd64 (= 6.1.180-1)

Package: linux-image-6.1.0-51-cloud-amd64
Version: 6.1.180-1
SHA256: {new_kernel}
"""
OLD_KERNEL, NEW_KERNEL, BUSYBOX = "a" * 64, "b" * 64, "c" * 64
GUEST_PARTS = f"""from agentcage.cage.vm.debian_parts import DebianPart

# The kernel linux-image-cloud-amd64 depends on.
KERNEL = DebianPart(
    "linux-image-6.1.0-50-cloud-amd64",
    "6.1.176-1",
    "{OLD_KERNEL}",
)
KERNEL_RELEASE = "6.1.0-50-cloud-amd64"
BUSYBOX = DebianPart("busybox-static", "1:1.35.0-4+deb12u1+b1", "{BUSYBOX}")
"""
HASHES = {"old_kernel": OLD_KERNEL, "new_kernel": NEW_KERNEL, "busybox": BUSYBOX}
ARCH = platform.machine()
GLIBC, MUSL = f"manylinux_2_17_{ARCH}.manylinux2014_{ARCH}", f"musllinux_1_1_{ARCH}"
# npm 11 is newer, but the pin stays on its major (Debian's Node.js runs npm 10).
NPM_VERSIONS = ("10.0.0", "10.1.0", "10.2.0-pre.1", "11.0.0")


def _npm_document(registry: str) -> str:
    versions = {
        v: {
            "dist": {
                "tarball": f"{registry}npm/-/npm-{v}.tgz",
                "integrity": f"sha512-{v.replace('.', '')}==",
            }
        }
        for v in NPM_VERSIONS
    }
    return json.dumps({"name": "npm", "versions": versions})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _uv_env(tmp: Path) -> dict[str, str]:
    return {
        "UV_CACHE_DIR": str(tmp / "uv-cache"),
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
    }


@pytest.fixture
def checkout(
    tmp_path: Path, registry: LocalRegistry, podman: PodmanEnv
) -> Iterator[tuple[Path, str, PodmanEnv, dict[str, str]]]:
    """The stand-in checkout, locked and pinned against yesterday's sources; then the
    sources move on: a newer tinypkg and mitmproxy, the tag pushed over, Debian fixes."""
    index = PackageIndex(tmp_path / "simple")
    index.add("tinypkg", "1.0")
    index.add("mitmproxy", "10.0")
    old_uv = index.add("uv", "0.1.0", GLIBC)
    root = tmp_path / "checkout"
    (root / "src" / "agentcage" / "cage").mkdir(parents=True)
    (root / "images" / "agent-tools").mkdir(parents=True)
    (root / "images" / "agent-tools" / "uv.txt").write_text(
        f"uv==0.1.0 --hash=sha256:{_sha256(old_uv)}\n"
    )
    (root / "images" / "agent-tools" / "npm.txt").write_text(
        "http://127.0.0.1:1/npm/-/npm-10.0.0.tgz sha512-1000==\n"
    )
    (root / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinypkg", "mitmproxy==10.0"]\n'
    )
    target = f"{registry.address}/{TAG}"
    old = podman.push("localhost/t:a", target)
    (root / "src" / "agentcage" / "cage" / "images.py").write_text(
        f'REGISTRY_BASE = (\n    "{target}"\n    "@{old}"\n)\n'
        'DEBIAN_SUITE = "bookworm"\n'
        'RUNTIME_PACKAGES = ("python3", "ca-certificates")\n'
        'AGENT_DEBIAN_PACKAGES = ("python3", "curl")\n'
    )
    (root / "src" / "agentcage" / "cage" / "vm").mkdir()
    (root / "src" / "agentcage" / "cage" / "vm" / "debian_parts.py").write_text(GUEST_PARTS)
    env = {**podman.env, **_uv_env(tmp_path)}
    with index.serve() as url:
        uv = shutil.which("uv")
        assert uv is not None
        subprocess.run(
            [uv, "lock", "--default-index", url], cwd=root, env={**os.environ, **env}, check=True
        )
        index.add("tinypkg", "1.1")
        index.add("mitmproxy", "11.0")
        for wheel_platform in (GLIBC, MUSL, "macosx_11_0_arm64", "win_amd64"):
            index.add("uv", "0.2.0", wheel_platform)
        (tmp_path / "simple" / "npm").write_text(_npm_document(url))
        new = podman.push("localhost/t:b", target)
        assert new != old
        (tmp_path / "Packages").write_text(MAIN.format(**HASHES))
        security = SECURITY.format(**HASHES).encode()
        (tmp_path / "Packages-security.xz").write_bytes(lzma.compress(security))
        yield root, url, podman, env


def deps(checkout: tuple[Path, str, PodmanEnv, dict[str, str]], *args: str) -> str:
    root, url, _, env = checkout
    packages = root.parent / "Packages"
    registry = (root / "src/agentcage/cage/images.py").read_text().split('"')[1].split("/")[0]
    shown = run_cli(
        "deps", "check", "--project", str(root), "--index-url", url,
        "--plain-http-registry", registry, "--npm-registry", url,
        "--debian-index", str(packages), "--debian-index", f"{packages}-security.xz",
        *args, env=env, timeout=180,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_check_reports_every_pin_and_changes_nothing(
    checkout: tuple[Path, str, PodmanEnv, dict[str, str]],
) -> None:
    root, _, podman, _ = checkout
    before = snapshot(root)
    report = json.loads(deps(checkout, "--json"))
    rows = {(i["kind"], i["name"].split(" ")[0]): i for i in report["items"]}
    image = next(i for i in report["items"] if i["kind"] == "image")
    assert image["name"].endswith(f"/{TAG} (REGISTRY_BASE)") and image["newer"]
    assert image["pinned"] in before["src/agentcage/cage/images.py"]
    assert image["available"] == podman.digest(image["name"].split(" ")[0])
    assert rows[("debian", "bookworm/dnsmasq-base")]["available"] == "2.90-4~deb12u2"  # security
    assert rows[("debian", "bookworm/curl")]["available"] == "7.88.1-10+deb12u12"
    assert rows[("debian", "bookworm/python3")]["available"] == "3.11.2-1+b1"
    assert rows[("debian", "bookworm/ca-certificates")]["available"] is None  # in no index
    assert rows[("debian", "bookworm/python3")]["pinned"] is None  # nothing recorded yet
    assert (
        rows[("mitmproxy", "mitmproxy")]["pinned"],
        rows[("mitmproxy", "mitmproxy")]["available"],
    ) == ("10.0", "11.0")
    assert (rows[("python", "tinypkg")]["pinned"], rows[("python", "tinypkg")]["available"]) == (
        "1.0",
        "1.1",
    )
    kernel, busybox = rows[("guest", "KERNEL")], rows[("guest", "BUSYBOX")]
    assert kernel["pinned"] == "linux-image-6.1.0-50-cloud-amd64 6.1.176-1"
    # The meta-package moved on to a new ABI: the new kernel is another package.
    assert kernel["available"] == "linux-image-6.1.0-51-cloud-amd64 6.1.180-1"
    assert kernel["sha256"] == NEW_KERNEL and kernel["newer"]
    assert busybox["available"] == busybox["pinned"] and not busybox["newer"]
    uv, npm = rows[("tool", "uv")], rows[("tool", "npm")]
    assert (uv["pinned"], uv["available"], uv["where"]) == (
        "0.1.0",
        "0.2.0",
        "images/agent-tools/uv.txt",
    )
    assert (npm["name"], npm["pinned"], npm["available"]) == ("npm 10", "10.0.0", "10.1.0")
    assert report["locked_python_packages"] == 3 and report["newer"] == 9
    assert snapshot(root) == before  # report-only
    text = deps(checkout)
    lines = text.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "PINNED", "AVAILABLE", "STATE", "WHERE"]
    image_row = next(line.split() for line in lines if line.startswith("image "))
    assert image_row[3] == image["pinned"][:19] and image_row[5] == "newer"
    assert re.search(
        r"\ndebian +bookworm/ca-certificates +- +- +not found +images/debian.lock\n", text
    )
    assert "9 newer; uv.lock holds 3 packages" in text


def test_update_rewrites_the_pins_and_shows_the_diff(
    checkout: tuple[Path, str, PodmanEnv, dict[str, str]],
) -> None:
    root, _, podman, _ = checkout
    old = snapshot(root)["src/agentcage/cage/images.py"]
    shown = deps(checkout, "--update")
    new_digest = podman.digest(old.split('"')[1])
    assert f'+    "@{new_digest}"' in shown
    assert "+++ b/images/debian.lock" in shown
    assert "+bookworm dnsmasq-base 2.90-4~deb12u2" in shown
    assert '-dependencies = ["tinypkg", "mitmproxy==10.0"]' in shown
    assert '+dependencies = ["tinypkg", "mitmproxy==11.0"]' in shown
    assert "+++ b/uv.lock" in shown
    assert '+    "linux-image-6.1.0-51-cloud-amd64",' in shown
    files = snapshot(root)
    parts = files["src/agentcage/cage/vm/debian_parts.py"]
    assert f'    "6.1.180-1",\n    "{NEW_KERNEL}",\n)' in parts
    assert 'KERNEL_RELEASE = "6.1.0-51-cloud-amd64"' in parts
    assert f'"1:1.35.0-4+deb12u1+b1", "{BUSYBOX}")' in parts  # unchanged
    assert new_digest in files["src/agentcage/cage/images.py"]
    assert 'name = "tinypkg"\nversion = "1.1"' in files["uv.lock"]
    assert 'name = "mitmproxy"\nversion = "11.0"' in files["uv.lock"]
    # Each Linux wheel of this architecture, glibc's and musl's: pip picks one of them.
    wheels = sorted(
        _sha256(w) for w in (root.parent / "simple" / "uv").glob("uv-0.2.0-*linux*.whl")
    )
    assert len(wheels) == 2
    assert files["images/agent-tools/uv.txt"] == (
        f"uv==0.2.0 --hash=sha256:{wheels[0]} --hash=sha256:{wheels[1]}\n"
    )
    url = checkout[1]
    assert files["images/agent-tools/npm.txt"] == f"{url}npm/-/npm-10.1.0.tgz sha512-1010==\n"
    assert "+uv==0.2.0 --hash=sha256:" in shown
    again = json.loads(deps(checkout, "--json"))
    assert again["newer"] == 0
    recorded = {i["name"]: i["pinned"] for i in again["items"] if i["kind"] == "debian"}
    # ca-certificates is in no index given: nothing to record for it.
    assert recorded == {
        "bookworm/ca-certificates": None,
        "bookworm/curl": "7.88.1-10+deb12u12",
        "bookworm/dnsmasq-base": "2.90-4~deb12u2",
        "bookworm/python3": "3.11.2-1+b1",
    }
    assert "nothing to update" in deps(checkout, "--update")
