"""What a project checkout pins, read from its files, and rewriting those files.

- the Python lock: `uv.lock` (its packages; uv says which have newer versions);
- mitmproxy: the `mitmproxy==X` requirement in `pyproject.toml`;
- base images: string constants in `src/agentcage/cage/images.py` naming an image by
  tag and digest (`REGISTRY_BASE = "repo:tag@sha256:..."`);
- Debian packages, per suite (`DEBIAN_SOURCES`): the sidecar and agent images'
  (`images.py`, plus `dnsmasq-base`, which the runtime image installs on a registry
  base), the host container images' (`host_image.py`) and the microVM container's
  trixie `virtiofsd` (`vm/virtiofs.py`), with the versions last
  recorded in `images/debian.lock` (absent until the first `--update`). That file's
  lines of a suite are an input of the tags of the images built from it, so
  recording newer versions rebuilds them;
- the microVM guest's parts (`GUEST_PARTS_PY`): `NAME = DebianPart(PACKAGE, VERSION,
  SHA256)` constants, fetched from `GUEST_SUITE` and refused unless the .deb has that
  digest. The kernel's package name carries its ABI (`linux-image-6.1.0-50-cloud-amd64`),
  so its newer release is the one the meta-package (`GUEST_META`) depends on now;
- the package-manager test image's clients (`images/agent-tools`): uv's wheel
  (`uv==X --hash=sha256:...` in `uv.txt`, one hash per Linux wheel of this machine's
  architecture) and npm's registry tarball (`URL sha512-...` in `npm.txt`).

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
HOST_IMAGE_PY = Path("src/agentcage/cage/host_image.py")
VIRTIOFS_PY = Path("src/agentcage/cage/vm/virtiofs.py")
DEBIAN_LOCK = Path("images/debian.lock")
GUEST_PARTS_PY = Path("src/agentcage/cage/vm/debian_parts.py")
GUEST_SUITE = "bookworm"
# constant -> the meta-package whose Depends names the part's current package
GUEST_META = {"KERNEL": "linux-image-cloud-amd64"}
UV_TXT = Path("images/agent-tools/uv.txt")
NPM_TXT = Path("images/agent-tools/npm.txt")


@dataclass(frozen=True)
class DebianSource:
    """Where one image family names its suite and packages (constants of `module`)."""

    module: Path
    suite: str
    packages: tuple[str, ...]
    extra: tuple[str, ...] = ()


DEBIAN_SOURCES = (
    # dnsmasq-base: images/runtime/Containerfile installs it on a registry base.
    DebianSource(
        IMAGES_PY, "DEBIAN_SUITE", ("RUNTIME_PACKAGES", "AGENT_DEBIAN_PACKAGES"), ("dnsmasq-base",)
    ),
    DebianSource(HOST_IMAGE_PY, "HOST_SUITE", ("HOST_PACKAGES",)),
    DebianSource(HOST_IMAGE_PY, "DEBIAN12_SUITE", ("DEBIAN12_PACKAGES",)),
    # The microVM container's virtiofsd and the libraries it links, from trixie.
    DebianSource(VIRTIOFS_PY, "VIRTIOFSD_SUITE", ("VIRTIOFSD_PACKAGES",)),
)
_DIGEST_REF = re.compile(r"^(?P<ref>[a-z0-9][^\s@]*:[^\s@:/]+)@(?P<digest>sha256:[0-9a-f]{64})$")
_MITMPROXY = re.compile(r'"mitmproxy==([^"]+)"')
_UV_PIN = re.compile(r"^uv==(?P<version>\S+)(?: --hash=sha256:[0-9a-f]{64})+$")
_NPM_PIN = re.compile(r"^\S+/npm-(?P<version>[^/\s]+)\.tgz sha512-\S+$")


@dataclass(frozen=True)
class ImagePin:
    constant: str  # the name in images.py
    reference: str  # REPO:TAG
    digest: str  # sha256:...


@dataclass(frozen=True)
class GuestPart:
    constant: str  # the name in debian_parts.py
    package: str
    version: str
    sha256: str


@dataclass(frozen=True)
class ToolPin:
    """One client the package-manager test image downloads, and its pinned version."""

    name: str  # uv | npm
    file: Path
    version: str


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

    def _constants(self, module: Path = IMAGES_PY) -> dict[str, object]:
        tree = ast.parse(self.read(module), str(self.path(module)))
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

    def debian_packages(self) -> dict[str, list[str]]:
        """Suite -> the packages images are built from it (modules the checkout lacks, and
        constants they lack, are skipped)."""
        suites: dict[str, set[str]] = {}
        for source in DEBIAN_SOURCES:
            if not self.path(source.module).is_file():
                continue
            constants = self._constants(source.module)
            suite = constants.get(source.suite)
            if not isinstance(suite, str):
                continue
            names = suites.setdefault(suite, set(source.extra))
            for key in source.packages:
                value = constants.get(key)
                if isinstance(value, tuple):
                    names.update(str(item) for item in value)
        return {suite: sorted(names) for suite, names in sorted(suites.items())}

    def debian_recorded(self) -> dict[tuple[str, str], str]:
        """(suite, package) -> the version images/debian.lock records."""
        if not self.path(DEBIAN_LOCK).is_file():
            return {}
        versions = {}
        for line in self.read(DEBIAN_LOCK).splitlines():
            parts = line.split()
            if len(parts) == 3 and not line.startswith("#"):
                versions[(parts[0], parts[1])] = parts[2]
        return versions

    def guest_parts(self) -> list[GuestPart]:
        """The microVM guest's pinned .debs (none in a checkout without the VM backend)."""
        if not self.path(GUEST_PARTS_PY).is_file():
            return []
        tree = ast.parse(self.read(GUEST_PARTS_PY), str(self.path(GUEST_PARTS_PY)))
        parts = []
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target, call = node.targets[0], node.value
            if (
                isinstance(target, ast.Name)
                and isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "DebianPart"
                and len(call.args) == 3
                and all(isinstance(arg, ast.Constant) for arg in call.args)
            ):
                package, version, sha256 = (str(ast.literal_eval(arg)) for arg in call.args)
                parts.append(GuestPart(target.id, package, version, sha256))
        return parts

    def tool_pins(self) -> list[ToolPin]:
        """images/agent-tools' uv and npm pins (none in a checkout without them)."""
        pins = []
        for name, file, pattern in (("uv", UV_TXT, _UV_PIN), ("npm", NPM_TXT, _NPM_PIN)):
            if not self.path(file).is_file():
                continue
            match = pattern.match(self.read(file).strip())
            if match is None:
                raise DepsError(
                    f"{self.path(file)}: not the pin `deps check` reads",
                    hint="uv.txt is `uv==VERSION --hash=sha256:HEX`, npm.txt is "
                    "`URL/npm-VERSION.tgz sha512-BASE64`",
                )
            pins.append(ToolPin(name, file, match.group("version")))
        return pins

    def mitmproxy_pin(self) -> str | None:
        match = _MITMPROXY.search(self.read("pyproject.toml"))
        return match.group(1) if match else None

    def locked_packages(self) -> int:
        try:
            data = tomllib.loads(self.read("uv.lock"))
        except tomllib.TOMLDecodeError as exc:
            raise DepsError(f"{self.path('uv.lock')} is not TOML: {exc}") from exc
        return len(data.get("package", []))


def debian_lock_text(versions: dict[tuple[str, str], str]) -> str:
    lines = [
        "# Debian package versions the images were last checked against: SUITE PACKAGE VERSION.",
        "# Written by `agentcage deps check --update`; a suite's lines are an input of the",
        "# tags of the images built from it, so a change here rebuilds them.",
    ]
    lines += [f"{suite} {name} {versions[(suite, name)]}" for suite, name in sorted(versions)]
    return "\n".join(lines) + "\n"


def rewrite_guest_part(text: str, part: GuestPart, package: str, version: str, sha256: str) -> str:
    """debian_parts.py's `text` with `part`'s three arguments replaced (and the kernel's
    release name, which follows its package name)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == part.constant
            and isinstance(node.value, ast.Call)
        ):
            # Last argument first, so the offsets of the earlier ones stay right.
            pairs = zip(node.value.args, (package, version, sha256), strict=True)
            for arg, new in reversed(list(pairs)):
                begin = starts[arg.lineno - 1] + arg.col_offset
                end = starts[(arg.end_lineno or arg.lineno) - 1] + (arg.end_col_offset or 0)
                text = text[:begin] + f'"{new}"' + text[end:]
            break
    else:
        raise DepsError(
            f"{GUEST_PARTS_PY}: no {part.constant} = DebianPart(...); rewrite it by hand"
        )
    if part.constant in GUEST_META and package != part.package:
        old = part.package.removeprefix("linux-image-")
        new_release = package.removeprefix("linux-image-")
        text = replace_once(
            text,
            f'KERNEL_RELEASE = "{old}"',
            f'KERNEL_RELEASE = "{new_release}"',
            str(GUEST_PARTS_PY),
        )
    return text


def uv_pin_text(version: str, sha256s: list[str]) -> str:
    return f"uv=={version}" + "".join(f" --hash=sha256:{h}" for h in sorted(sha256s)) + "\n"


def npm_pin_text(tarball: str, integrity: str) -> str:
    return f"{tarball} {integrity}\n"


def replace_once(text: str, old: str, new: str, where: str) -> str:
    if text.count(old) != 1:
        raise DepsError(f"{where}: expected {old!r} exactly once; rewrite it by hand")
    return text.replace(old, new)
