"""Where newer versions are learnt: a container registry (skopeo), a Python package index
(its simple API, and `uv lock --upgrade --dry-run`), the npm registry (its abbreviated
package metadata).

Each is asked only through its ordinary client or protocol, and only about what the
project pins. Failures are `DepsError`s naming the source and what to check.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import platform
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agentcage.errors import DepsError

PYPI = "https://pypi.org/simple"
NPM_REGISTRY = "https://registry.npmjs.org"
TIMEOUT = 120.0
# What `uv lock` prints for each change: `Update name v1 -> v2`, `Add name v1`, ...
_UV_CHANGE = re.compile(r"^(Update|Add|Remove) (\S+) v(\S+)(?: -> v(\S+))?$")
# A release (no pre-, post- or dev part) in a wheel's or sdist's file name.
_FILE_VERSION = re.compile(r"^[A-Za-z0-9_.]+?-(\d+(?:\.\d+)*)(?:-|\.tar\.gz$|\.zip$)")


def run(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None, what: str
) -> subprocess.CompletedProcess[str]:
    """Run a client to its end; `DepsError` with its last words if it fails."""
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DepsError(f"{argv[0]} is not installed; it is needed to ask {what}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DepsError(f"{argv[0]} did not answer within {TIMEOUT:g}s asking {what}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DepsError(f"asking {what} failed: " + " / ".join(tail))
    return proc


def image_digest(reference: str, *, plain_http: bool = False) -> str:
    """The digest `reference` (REPO:TAG) points at now: of the manifest (list) it serves raw,
    which is what a pull by digest names. `plain_http`: the registry speaks HTTP (a
    local mirror)."""
    tls = ["--tls-verify=false"] if plain_http else []
    proc = run(
        ["skopeo", "inspect", "--raw", *tls, f"docker://{reference}"],
        what=f"the registry for {reference}",
    )
    return "sha256:" + hashlib.sha256(proc.stdout.encode("utf-8", "surrogateescape")).hexdigest()


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.hrefs: list[str] = []  # beside each name
        self._in_link = False
        self._href = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_link = tag == "a"
        self._href = (dict(attrs).get("href") or "") if self._in_link else ""

    def handle_data(self, data: str) -> None:
        if self._in_link:
            self.names.append(data.strip())
            self.hrefs.append(self._href)

    def handle_endtag(self, tag: str) -> None:
        self._in_link = False


def release_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def index_releases(index: str, project: str) -> list[str]:
    """The release versions of `project` on a PEP 503 simple index, lowest first."""
    links = _project_links(index, project)
    versions = set()
    for name in links.names:
        match = _FILE_VERSION.match(name)
        if match:
            versions.add(match.group(1))
    return sorted(versions, key=release_key)


def linux_wheels(index: str, project: str) -> dict[str, dict[str, str]]:
    """`project`'s wheels for Linux on this machine's architecture (what pip picks from,
    glibc or musl), per release: version -> file name -> sha256 from the index's links."""
    arch = platform.machine()
    found: dict[str, dict[str, str]] = {}
    links = _project_links(index, project)
    for name, href in zip(links.names, links.hrefs, strict=True):
        match = _FILE_VERSION.match(name)
        if match is None or not name.endswith(".whl"):
            continue
        platforms = name.removesuffix(".whl").split("-")[-1].split(".")
        _, _, sha256 = href.partition("#sha256=")
        if sha256 and any("linux" in tag and tag.endswith(f"_{arch}") for tag in platforms):
            found.setdefault(match.group(1), {})[name] = sha256
    return found


def _project_links(index: str, project: str) -> _Links:
    url = f"{index.rstrip('/')}/{_normalized(project)}/"
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            page = response.read(64 * 1024 * 1024).decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as exc:
        raise DepsError(
            f"cannot read {url}: {exc}", hint="pass --index-url with a simple index you reach"
        ) from exc
    links = _Links()
    links.feed(page)
    return links


@dataclass(frozen=True)
class NpmRelease:
    version: str
    tarball: str
    integrity: str  # sha512-BASE64, as npm checks it


def npm_releases(registry: str, package: str) -> list[NpmRelease]:
    """`package`'s releases (no pre-releases) on an npm registry, lowest first."""
    url = f"{registry.rstrip('/')}/{package}"
    # The abbreviated metadata npm itself installs from: versions and their dist only.
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.npm.install-v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            document = json.loads(response.read(64 * 1024 * 1024))
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise DepsError(
            f"cannot read {url}: {exc}", hint="pass --npm-registry with a registry you reach"
        ) from exc
    releases = []
    versions = document.get("versions") if isinstance(document, dict) else None
    for version, meta in (versions or {}).items():
        dist = meta.get("dist") if isinstance(meta, dict) else None
        if (
            re.fullmatch(r"\d+(?:\.\d+)*", version)
            and isinstance(dist, dict)
            and isinstance(dist.get("tarball"), str)
            and str(dist.get("integrity", "")).startswith("sha512-")
        ):
            releases.append(NpmRelease(version, dist["tarball"], dist["integrity"]))
    return sorted(releases, key=lambda release: release_key(release.version))


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockChange:
    """One package `uv lock --upgrade` would change: `old` or `new` empty for a removal or
    an addition."""

    name: str
    old: str
    new: str


def uv_upgrades(project: Path, index: str | None, *, dry_run: bool = True) -> list[LockChange]:
    """What `uv lock --upgrade` changes in `project`'s uv.lock (`dry_run`: nothing written)."""
    uv = os.environ.get("AGENTCAGE_UV") or shutil.which("uv") or "uv"
    argv = [uv, "lock", "--upgrade", "--refresh"]
    if dry_run:
        argv.append("--dry-run")
    if index is not None:
        argv += ["--default-index", index]
    proc = run(argv, cwd=project, what=f"the Python index for {project / 'uv.lock'}")
    changes = []
    for line in (proc.stderr + proc.stdout).splitlines():
        match = _UV_CHANGE.match(line.strip())
        if match is None:
            continue
        verb, name, first, second = match.groups()
        if verb == "Update":
            changes.append(LockChange(name, first, second or ""))
        elif verb == "Add":
            changes.append(LockChange(name, "", first))
        else:
            changes.append(LockChange(name, first, ""))
    return changes
