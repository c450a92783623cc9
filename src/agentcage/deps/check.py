"""`deps check`: each pin beside what its source offers now; `--update` rewrites the pins.

The report lists every image pin, every Debian package, mitmproxy, the package-manager
test image's uv and npm, and the locked Python packages uv would change (uv does not
list the ones it keeps). Updating rewrites `src/agentcage/cage/images.py` (digests),
`images/debian.lock`, `pyproject.toml` (mitmproxy), `images/agent-tools/uv.txt` and
`npm.txt`, and `uv.lock` (`uv lock --upgrade`), and returns the unified diff of every
file it changed.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentcage.deps import debian
from agentcage.deps.pins import (
    DEBIAN_LOCK,
    GUEST_META,
    GUEST_PARTS_PY,
    GUEST_SUITE,
    IMAGES_PY,
    NPM_TXT,
    UV_TXT,
    Checkout,
    GuestPart,
    ToolPin,
    debian_lock_text,
    npm_pin_text,
    replace_once,
    rewrite_guest_part,
    uv_pin_text,
)
from agentcage.deps.sources import (
    NPM_REGISTRY,
    PYPI,
    image_digest,
    index_releases,
    linux_wheels,
    npm_releases,
    release_key,
    uv_upgrades,
)
from agentcage.errors import DepsError


@dataclass(frozen=True)
class UpstreamSources:
    """Where to ask: the Python index (None: uv's configured one), Debian `Packages` files
    (`SUITE=SOURCE` for one suite, a bare SOURCE for every suite; a suite with none is
    not asked), and the registries (`host:port`) that speak plain HTTP."""

    python_index: str | None = None
    debian_indexes: Sequence[str] = ()
    plain_http: frozenset[str] = frozenset()
    npm_registry: str | None = None

    def indexes_for(self, suite: str) -> list[str]:
        found = []
        for given in self.debian_indexes:
            named, sep, source = given.partition("=")
            if not sep or "/" in named:  # a bare path or URL (which may hold `=`)
                found.append(given)
            elif named == suite:
                found.append(source)
        return found

    @property
    def simple_index(self) -> str:
        return (
            self.python_index
            or os.environ.get("UV_DEFAULT_INDEX")
            or os.environ.get("UV_INDEX_URL")
            or PYPI
        )

    @property
    def npm(self) -> str:
        # npm's own spelling of its setting in the environment is lower case.
        configured = os.environ.get("npm_config_registry")  # noqa: SIM112
        return self.npm_registry or configured or NPM_REGISTRY


@dataclass(frozen=True)
class Item:
    kind: str  # python | mitmproxy | image | debian | guest
    name: str
    pinned: str  # empty: not recorded yet
    available: str  # empty: the source does not have it
    where: str
    sha256: str = ""  # guest: the available .deb's, which becomes its pin
    pin_text: str = ""  # tool: its pin file's text for `available`

    @property
    def newer(self) -> bool:
        return bool(self.available) and self.available != self.pinned

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "pinned": self.pinned or None,
            "available": self.available or None,
            "where": self.where,
            "newer": self.newer,
            **({"sha256": self.sha256} if self.kind == "guest" else {}),
        }


@dataclass
class Report:
    items: list[Item] = field(default_factory=list)
    locked: int = 0  # packages in uv.lock

    @property
    def newer(self) -> list[Item]:
        return [item for item in self.items if item.newer]

    def as_dict(self) -> dict[str, object]:
        return {
            "locked_python_packages": self.locked,
            "newer": len(self.newer),
            "items": [item.as_dict() for item in self.items],
        }


def check(checkout: Checkout, sources: UpstreamSources) -> Report:
    report = Report(locked=checkout.locked_packages())
    where = f"{IMAGES_PY}"
    for pin in checkout.image_pins():
        registry = pin.reference.split("/", 1)[0]
        now = image_digest(pin.reference, plain_http=registry in sources.plain_http)
        name = f"{pin.reference} ({pin.constant})"
        report.items.append(Item("image", name, pin.digest, now, where))
    report.items += _debian(checkout, sources)
    report.items += _guest(checkout, sources)
    report.items += [_tool(pin, sources) for pin in checkout.tool_pins()]
    pinned = checkout.mitmproxy_pin()
    if pinned is not None:
        releases = index_releases(sources.simple_index, "mitmproxy")
        newest = releases[-1] if releases else ""
        if newest and release_key(newest) <= release_key(pinned):
            newest = pinned
        report.items.append(Item("mitmproxy", "mitmproxy", pinned, newest, "pyproject.toml"))
    for change in uv_upgrades(checkout.root, sources.python_index):
        report.items.append(Item("python", change.name, change.old, change.new, "uv.lock"))
    return report


def _debian(checkout: Checkout, sources: UpstreamSources) -> list[Item]:
    recorded = checkout.debian_recorded()
    items = []
    for suite, names in checkout.debian_packages().items():
        indexes = sources.indexes_for(suite)
        if not indexes:
            continue
        newest = debian.newest(
            debian.index_versions(debian.read_index(source), names) for source in indexes
        )
        items += [
            Item(
                "debian",
                f"{suite}/{name}",
                recorded.get((suite, name), ""),
                newest.get(name, ""),
                str(DEBIAN_LOCK),
            )
            for name in names
        ]
    return items


def _guest(checkout: Checkout, sources: UpstreamSources) -> list[Item]:
    """The microVM guest's .debs: `PACKAGE VERSION` pinned beside the newest offered."""
    parts = checkout.guest_parts()
    indexes = sources.indexes_for(GUEST_SUITE)
    if not parts or not indexes:
        return []
    data = [debian.read_index(source) for source in indexes]
    metas = {GUEST_META[p.constant] for p in parts if p.constant in GUEST_META}
    meta = debian.newest_entries(debian.index_entries(d, metas) for d in data)
    wanted = {p.constant: _current_package(p, meta) for p in parts}
    found = debian.newest_entries(debian.index_entries(d, set(wanted.values())) for d in data)
    items = []
    for part in parts:
        entry = found.get(wanted[part.constant])
        available = f"{wanted[part.constant]} {entry.version}" if entry else ""
        if entry is not None and (wanted[part.constant], entry.version) == (
            part.package,
            part.version,
        ):
            available = f"{part.package} {part.version}"  # the same: not newer
        items.append(
            Item(
                "guest",
                part.constant,
                f"{part.package} {part.version}",
                available,
                str(GUEST_PARTS_PY),
                entry.sha256 if entry else "",
            )
        )
    return items


def _tool(pin: ToolPin, sources: UpstreamSources) -> Item:
    """The newest release of a test-image client with what checks it; npm stays on its
    pinned major, which is the one Debian's Node.js runs (npm 11 wants Node 20)."""
    if pin.name == "uv":
        wheels = linux_wheels(sources.simple_index, "uv")
        newest = max(wheels, key=release_key, default="")
        text = uv_pin_text(newest, list(wheels[newest].values())) if newest else ""
        return Item("tool", "uv", pin.version, newest, str(pin.file), pin_text=text)
    major = pin.version.split(".")[0]
    same_major = [r for r in npm_releases(sources.npm, "npm") if r.version.split(".")[0] == major]
    if not same_major:
        return Item("tool", f"npm {major}", pin.version, "", str(pin.file))
    newest_npm = same_major[-1]
    return Item(
        "tool",
        f"npm {major}",
        pin.version,
        newest_npm.version,
        str(pin.file),
        pin_text=npm_pin_text(newest_npm.tarball, newest_npm.integrity),
    )


def _current_package(part: GuestPart, meta: dict[str, debian.IndexEntry]) -> str:
    """The package `part` should be now: the kernel the meta-package depends on, else itself."""
    entry = meta.get(GUEST_META.get(part.constant, ""))
    if entry is None:
        return part.package
    for alternative in entry.depends.split(","):
        name = alternative.split("|")[0].split("(")[0].strip()
        if name.startswith("linux-image-"):
            return name
    return part.package


def update(checkout: Checkout, report: Report, sources: UpstreamSources) -> str:
    """Rewrite every pin `report` found newer; the unified diff of what changed."""
    touched = [
        IMAGES_PY,
        DEBIAN_LOCK,
        GUEST_PARTS_PY,
        UV_TXT,
        NPM_TXT,
        Path("pyproject.toml"),
        Path("uv.lock"),
    ]
    before = {path: _text(checkout.path(path)) for path in touched}
    images = before[IMAGES_PY]
    for item in report.newer:
        if item.kind == "image":
            images = replace_once(images, item.pinned, item.available, str(IMAGES_PY))
    _write(checkout.path(IMAGES_PY), images, before[IMAGES_PY])
    debs = [item for item in report.items if item.kind == "debian" and item.available]
    if any(item.newer for item in debs):
        versions = dict(checkout.debian_recorded())  # suites not asked this time stay
        for item in debs:
            suite, _, name = item.name.partition("/")
            versions[(suite, name)] = item.available
        _write(checkout.path(DEBIAN_LOCK), debian_lock_text(versions), before[DEBIAN_LOCK])
    guest = before[GUEST_PARTS_PY]
    parts = {part.constant: part for part in checkout.guest_parts()}
    for item in report.newer:
        if item.kind == "guest":
            package, _, version = item.available.partition(" ")
            if not item.sha256:
                raise DepsError(
                    f"the index gives no SHA256 for {package} {version}; pin it by hand"
                )
            guest = rewrite_guest_part(guest, parts[item.name], package, version, item.sha256)
    _write(checkout.path(GUEST_PARTS_PY), guest, before[GUEST_PARTS_PY])
    for item in report.newer:
        if item.kind == "tool":
            file = Path(item.where)
            _write(checkout.path(file), item.pin_text, before[file])
    pyproject = before[Path("pyproject.toml")]
    for item in report.newer:
        if item.kind == "mitmproxy":
            pyproject = replace_once(
                pyproject,
                f'"mitmproxy=={item.pinned}"',
                f'"mitmproxy=={item.available}"',
                "pyproject.toml",
            )
    _write(checkout.path("pyproject.toml"), pyproject, before[Path("pyproject.toml")])
    if any(item.kind in ("python", "mitmproxy") for item in report.newer):
        uv_upgrades(checkout.root, sources.python_index, dry_run=False)
    return "".join(
        "".join(
            difflib.unified_diff(
                before[path].splitlines(keepends=True),
                _text(checkout.path(path)).splitlines(keepends=True),
                f"a/{path}",
                f"b/{path}",
            )
        )
        for path in touched
    )


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _write(path: Path, text: str, before: str) -> None:
    if text != before:
        path.write_text(text, encoding="utf-8")
