"""`agentcage deps check [--update]`: the project's pins beside what is newer."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable
from pathlib import Path

import click

from agentcage.cage.image_inputs import source_root
from agentcage.deps.check import Report, UpstreamSources, check, update
from agentcage.deps.pins import Checkout

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY = "http://deb.debian.org/debian-security"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def debian_indexes(suites: Iterable[str]) -> list[str]:
    """Debian's own `Packages` files for each suite: main, its updates and its security
    fixes, as `SUITE=URL`."""
    arch = _ARCH.get(platform.machine(), "amd64")
    tail = f"main/binary-{arch}/Packages.xz"
    return [
        f"{suite}={url}"
        for suite in suites
        for url in (
            f"{DEBIAN_MIRROR}/dists/{suite}/{tail}",
            f"{DEBIAN_MIRROR}/dists/{suite}-updates/{tail}",
            f"{DEBIAN_SECURITY}/dists/{suite}-security/{tail}",
        )
    ]


@click.group()
def deps() -> None:
    """The versions this project pins, and newer ones."""


@deps.command("check")
@click.option(
    "--project",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The agentcage source checkout (default: the one this agentcage runs from, or "
    "$AGENTCAGE_SOURCE).",
)
@click.option(
    "--index-url",
    metavar="URL",
    help="Python simple index to ask (default: uv's configured one, else PyPI).",
)
@click.option(
    "--debian-index",
    "debian_index",
    multiple=True,
    metavar="[SUITE=]URL|PATH",
    help="A Debian `Packages` file (plain, .gz or .xz) for SUITE, or without `SUITE=` for "
    "every suite; repeatable (default: deb.debian.org's main, -updates and -security of "
    "each suite images are built from).",
)
@click.option(
    "--npm-registry",
    metavar="URL",
    help="npm registry to ask for the test image's npm (default: $npm_config_registry, "
    "else registry.npmjs.org).",
)
@click.option(
    "--plain-http-registry",
    "plain_http",
    multiple=True,
    metavar="HOST:PORT",
    help="A registry that speaks plain HTTP (a local mirror); repeatable.",
)
@click.option(
    "--update",
    "update_",
    is_flag=True,
    help="Rewrite the pins that have newer versions and print the diff.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON for tools.")
def check_(
    project: Path | None,
    index_url: str | None,
    debian_index: tuple[str, ...],
    npm_registry: str | None,
    plain_http: tuple[str, ...],
    update_: bool,
    as_json: bool,
) -> None:
    """Report each pin beside what its source offers now; change nothing unless --update.

    Pins: base images by digest (asked with `skopeo inspect`), the Debian packages
    images are built from (recorded in images/debian.lock), mitmproxy's version in
    pyproject.toml, the package-manager test image's uv wheel and npm tarball
    (images/agent-tools), and uv.lock (`uv lock --upgrade --dry-run`). Exit 0 whether or not
    something is newer; the JSON's `newer` counts it.
    """
    checkout = Checkout(project or source_root())
    indexes = list(debian_index) or debian_indexes(checkout.debian_packages())
    sources = UpstreamSources(
        python_index=index_url,
        debian_indexes=indexes,
        plain_http=frozenset(plain_http),
        npm_registry=npm_registry,
    )
    report = check(checkout, sources)
    if as_json and not update_:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    if not as_json:
        click.echo(table(report))
    if update_:
        diff = update(checkout, report, sources) if report.newer else ""
        if as_json:
            click.echo(json.dumps({**report.as_dict(), "diff": diff}, indent=2))
        else:
            click.echo(diff or "nothing to update", nl=not diff)


def table(report: Report) -> str:
    """One row per pin; digests cut to 12 hex digits (`--json` has them whole)."""
    rows = [("KIND", "NAME", "PINNED", "AVAILABLE", "STATE", "WHERE")]
    for item in report.items:
        state = "newer" if item.newer else "current" if item.available else "not found"
        pinned, available = _short(item.pinned) or "-", _short(item.available) or "-"
        rows.append((item.kind, item.name, pinned, available, state, item.where))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    ]
    newer = len(report.newer)
    lines.append(
        f"{newer} newer; uv.lock holds {report.locked} packages, the others are current"
        + ("; `agentcage deps check --update` rewrites the pins" if newer else "")
    )
    return "\n".join(lines)


def _short(version: str) -> str:
    return version[:19] if version.startswith("sha256:") else version
