"""`deps check`: each pin beside what its source offers now; `--update` rewrites the pins.

The report lists every image pin, every Debian package, mitmproxy, and the locked
Python packages uv would change (uv does not list the ones it keeps). Updating
rewrites `src/agentcage/cage/images.py` (digests), `images/debian.lock`,
`pyproject.toml` (mitmproxy) and `uv.lock` (`uv lock --upgrade`), and returns the
unified diff of every file it changed.
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
    IMAGES_PY,
    Checkout,
    debian_lock_text,
    replace_once,
)
from agentcage.deps.sources import (
    PYPI,
    image_digest,
    index_releases,
    release_key,
    uv_upgrades,
)


@dataclass(frozen=True)
class UpstreamSources:
    """Where to ask: the Python index (None: uv's configured one), Debian `Packages` files
    (`SUITE=SOURCE` for one suite, a bare SOURCE for every suite; a suite with none is
    not asked), and the registries (`host:port`) that speak plain HTTP."""

    python_index: str | None = None
    debian_indexes: Sequence[str] = ()
    plain_http: frozenset[str] = frozenset()

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


@dataclass(frozen=True)
class Item:
    kind: str  # python | mitmproxy | image | debian
    name: str
    pinned: str  # empty: not recorded yet
    available: str  # empty: the source does not have it
    where: str

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


def update(checkout: Checkout, report: Report, sources: UpstreamSources) -> str:
    """Rewrite every pin `report` found newer; the unified diff of what changed."""
    touched = [IMAGES_PY, DEBIAN_LOCK, Path("pyproject.toml"), Path("uv.lock")]
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
