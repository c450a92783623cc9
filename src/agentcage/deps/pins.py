"""What a project checkout pins, read from its files, and rewriting those files.

- the Python lock: `uv.lock` (its packages; uv says which have newer versions);
- mitmproxy: the `mitmproxy==X` requirement in `pyproject.toml`;
- base images: string constants in `src/agentcage/cage/images.py` naming an image by
  tag and digest (`REGISTRY_BASE = "repo:tag@sha256:..."`);
- Debian packages: the `*_PACKAGES` tuples and `DEBIAN_SUITE` there, plus
  `dnsmasq-base` (the runtime image installs it on a registry base), and the versions
  last recorded in `images/debian.lock` (absent until the first `--update`). That
  file is an input of the Debian-based images' tags, so recording newer versions
  rebuilds them at the next `cage create`.

The constants are read with `ast`, never imported: the checkout need not be the
installed code.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from agentcage.errors import DepsError

IMAGES_PY = Path("src/agentcage/cage/images.py")
DEBIAN_LOCK = Path("images/debian.lock")
EXTRA_DEBIAN_PACKAGES = ("dnsmasq-base",)  # images/runtime/Containerfile, registry base
_DIGEST_REF = re.compile(r"^(?P<ref>[a-z0-9][^\s@]*:[^\s@:/]+)@(?P<digest>sha256:[0-9a-f]{64})$")
_MITMPROXY = re.compile(r'"mitmproxy==([^"]+)"')


@dataclass(frozen=True)
class ImagePin:
    constant: str  # the name in images.py
    reference: str  # REPO:TAG
    digest: str  # sha256:...


@dataclass(frozen=True)
class Checkout:
    root: Path

    def path(self, relative: Path | str) -> Path:
        return self.root / relative

    def read(self, relative: Path | str) -> str:
        try:
            return self.path(relative).read_text(encoding="utf-8")
        except OSError as exc:
            raise DepsError(
                f"cannot read {self.path(relative)}: {exc.strerror}",
                hint="pass --project with an agentcage source checkout",
            ) from exc

    def _constants(self) -> dict[str, object]:
        tree = ast.parse(self.read(IMAGES_PY), str(self.path(IMAGES_PY)))
        found: dict[str, object] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        continue  # not a literal: not a pin
        return found

    def image_pins(self) -> list[ImagePin]:
        pins = []
        for name, value in sorted(self._constants().items()):
            match = _DIGEST_REF.match(value) if isinstance(value, str) else None
            if match:
                pins.append(ImagePin(name, match.group("ref"), match.group("digest")))
        return pins

    def debian_suite(self) -> str:
        suite = self._constants().get("DEBIAN_SUITE")
        if not isinstance(suite, str):
            raise DepsError(f"{self.path(IMAGES_PY)} has no DEBIAN_SUITE string")
        return suite

    def debian_packages(self) -> list[str]:
        names = set(EXTRA_DEBIAN_PACKAGES)
        for key, value in self._constants().items():
            if key.endswith("_PACKAGES") and isinstance(value, tuple):
                names.update(str(item) for item in value)
        return sorted(names)

    def debian_recorded(self) -> dict[str, str]:
        if not self.path(DEBIAN_LOCK).is_file():
            return {}
        versions = {}
        for line in self.read(DEBIAN_LOCK).splitlines():
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                versions[parts[0]] = parts[1]
        return versions

    def mitmproxy_pin(self) -> str | None:
        match = _MITMPROXY.search(self.read("pyproject.toml"))
        return match.group(1) if match else None

    def locked_packages(self) -> int:
        try:
            data = tomllib.loads(self.read("uv.lock"))
        except tomllib.TOMLDecodeError as exc:
            raise DepsError(f"{self.path('uv.lock')} is not TOML: {exc}") from exc
        return len(data.get("package", []))


def debian_lock_text(suite: str, versions: dict[str, str]) -> str:
    lines = [
        f"# Debian {suite} package versions the images were last checked against.",
        "# Written by `agentcage deps check --update`; an input of the Debian-based images'",
        "# tags, so a change here rebuilds them.",
    ]
    lines += [f"{name} {versions[name]}" for name in sorted(versions)]
    return "\n".join(lines) + "\n"


def replace_once(text: str, old: str, new: str, where: str) -> str:
    if text.count(old) != 1:
        raise DepsError(f"{where}: expected {old!r} exactly once; rewrite it by hand")
    return text.replace(old, new)
