"""A synthetic npm registry: packuments and tarballs for registry.npmjs.org, written as files.

`count` packages (a tenth of them scoped under @acme) form a dependency DAG: each package
depends on up to three later ones, and the project depends on every package nothing else
depends on, so an install pulls in all of them. Each package has two versions; every
range (`^1.0.0`) resolves to the newer one, so the tree is flat and the lock file written
here is exactly what npm would write. Output is deterministic for a given count.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.registries.dag import dependency_dag

HOST = "registry.npmjs.org"
VERSIONS = ("1.0.0", "1.1.0")
LATEST = VERSIONS[-1]
PROJECT = "e2e-app"


@dataclass(frozen=True)
class NpmPackage:
    name: str
    dependencies: tuple[str, ...]

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def tarball_path(self, version: str) -> str:
        return f"/{self.name}/-/{self.basename}-{version}.tgz"


@dataclass
class NpmRegistry:
    packages: list[NpmPackage]
    top_level: list[str]
    integrity: dict[str, str] = field(default_factory=dict)  # name -> LATEST's integrity

    def tarball_paths(self) -> set[str]:
        return {p.tarball_path(LATEST) for p in self.packages}

    def packument_paths(self) -> set[str]:
        return {f"/{p.name}" for p in self.packages}


def plan(count: int, seed: int = 18) -> NpmRegistry:
    names = [f"@acme/util-{i:03d}" if i % 10 == 7 else f"pkg-{i:03d}" for i in range(count)]
    graph, top = dependency_dag(names, seed)
    return NpmRegistry([NpmPackage(name, deps) for name, deps in graph.items()], top)


def _tarball(package: NpmPackage, version: str) -> bytes:
    manifest = {
        "name": package.name,
        "version": version,
        "main": "index.js",
        "license": "MIT",
        "dependencies": {d: "^1.0.0" for d in package.dependencies},
    }
    requires = "".join(f"require({json.dumps(d)});\n" for d in package.dependencies)
    files = {
        "package/package.json": json.dumps(manifest, indent=2).encode(),
        "package/index.js": f"{requires}module.exports = {json.dumps(package.name)};\n".encode(),
        "package/README.md": f"# {package.name}\n\nA synthetic package for tests.\n".encode(),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 499162500
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


AUDIT_PATH = "/-/npm/v1/security/advisories/bulk"


def write(registry: NpmRegistry, root: Path) -> None:
    """Packuments at /<name>/index.json and tarballs at their npm paths under root/HOST,
    and the answer to `npm audit`'s bulk query (no advisories)."""
    site = root / HOST
    (site / AUDIT_PATH.lstrip("/")).parent.mkdir(parents=True)
    (site / AUDIT_PATH.lstrip("/")).write_text("{}")
    for package in registry.packages:
        versions = {}
        for version in VERSIONS:
            data = _tarball(package, version)
            path = site / package.tarball_path(version).lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            versions[version] = {
                "name": package.name,
                "version": version,
                "main": "index.js",
                "license": "MIT",
                "dependencies": {d: "^1.0.0" for d in package.dependencies},
                "dist": {
                    "tarball": f"https://{HOST}{package.tarball_path(version)}",
                    "shasum": hashlib.sha1(data).hexdigest(),
                    "integrity": _integrity(data),
                },
            }
            if version == LATEST:
                registry.integrity[package.name] = _integrity(data)
        packument = {
            "_id": package.name,
            "name": package.name,
            "dist-tags": {"latest": LATEST},
            "versions": versions,
            "time": {v: f"2024-0{n + 1}-01T00:00:00.000Z" for n, v in enumerate(VERSIONS)},
        }
        (site / package.name / "index.json").write_text(json.dumps(packument))


def project(registry: NpmRegistry) -> dict[str, str]:
    """package.json and the package-lock.json `npm ci` installs from (after `write`)."""
    wanted = {name: "^1.0.0" for name in registry.top_level}
    manifest = {"name": PROJECT, "version": "1.0.0", "private": True, "dependencies": wanted}
    locked: dict[str, object] = {
        "": {"name": PROJECT, "version": "1.0.0", "dependencies": wanted},
    }
    for package in sorted(registry.packages, key=lambda p: p.name):
        entry: dict[str, object] = {
            "version": LATEST,
            "resolved": f"https://{HOST}{package.tarball_path(LATEST)}",
            "integrity": registry.integrity[package.name],
            "license": "MIT",
        }
        if package.dependencies:
            entry["dependencies"] = {d: "^1.0.0" for d in package.dependencies}
        locked[f"node_modules/{package.name}"] = entry
    lock = {
        "name": PROJECT,
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": locked,
    }
    return {
        "package.json": json.dumps(manifest, indent=2) + "\n",
        "package-lock.json": json.dumps(lock, indent=2) + "\n",
    }
