"""Build the proxy and DNS images, and find or build the agent's.

    base (registry image pinned by digest, or Debian via mmdebstrap | podman import)
      └── runtime  (venv with agentcage + hash-checked wheelhouse, dnsmasq, user 10000)
            ├── proxy   ENTRYPOINT agentcage, runs `proxy run`
            └── dns     ENTRYPOINT agentcage, runs `dns run`

Every image is tagged with a hash of its inputs (Containerfile, base, lock file, our
source; image_inputs.py), so a build whose inputs did not change is skipped. Which base
a cage builds on is chosen in base_choice.py.

The images are for the platform Podman builds on (`podman info`: on a Mac, its Podman
machine's Linux), which need not be this machine's: the wheelhouse is fetched for it,
and what must be compiled for it (agentcage's C accelerator, an sdist) is compiled here
only when this machine is that platform, else in the runtime image's native stage.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agentcage.cage.base_choice import PINNED_REF
from agentcage.cage.image_inputs import cache_dir, debian_lock, digest, source_root, tree_digest
from agentcage.cage.podman import Runner, SubprocessRunner
from agentcage.cage.wheelhouse import NATIVE, ImagePlatform, fill_wheelhouse, this_machine
from agentcage.errors import ConfigError, PodmanError

if TYPE_CHECKING:
    # Not at run time: `cage create` asks about the images (`look_ahead_usual`) before
    # the schema (pydantic, a quarter of a second here) has loaded.
    from agentcage.config.schema import CageConfig

# Docker Hub's python:3.11-slim-bookworm, pinned by digest: Debian 12's Python 3.11, as
# in the registry-free base, so one wheelhouse serves both.
REGISTRY_BASE = (
    "docker.io/library/python:3.11-slim-bookworm"
    "@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91"
)
_BASE_PULL_HINT = (
    "`--base debian` builds the images from Debian packages without any registry; "
    "otherwise check that this machine reaches the registry"
)
_AGENT_PULL_HINT = (
    "check container.image and that this machine reaches its registry; an image built "
    "locally (`podman build -t NAME`) or container.containerfile needs no registry"
)
DEBIAN_SUITE = "bookworm"
# nftables and iproute2 (and util-linux's setpriv, essential in Debian): default deny's
# setup (steering.py) runs them in the proxy container's mount namespace.
RUNTIME_PACKAGES = (
    "python3", "python3-venv", "ca-certificates", "dnsmasq-base", "passwd", "nftables",
    "iproute2",
)  # fmt: skip
# A registry-free image for agents: examples/basic uses it.
AGENT_DEBIAN_IMAGE = "localhost/agentcage-agent-debian:bookworm"
AGENT_DEBIAN_PACKAGES = ("python3", "ca-certificates", "curl", "dnsutils")
_SLIM = (
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuiltImages:
    proxy: str
    dns: str
    runtime: str = ""  # the parent of both; kept while they are current


class ImageBuilder:
    """Builds images with `runner` (host podman), printing progress with `progress`."""

    def __init__(
        self,
        runner: Runner | None = None,
        progress: Progress = lambda _: None,
        machine: tuple[str, str] | None = None,
    ) -> None:
        self.runner = runner or SubprocessRunner()
        self.progress = progress
        # This machine as (sys.platform, platform.machine()): it builds native code for
        # the images only when it is their platform.
        self.machine = machine or this_machine()
        self.built_something = False  # only a build can leave tags stale
        # ref -> image ID, as one `podman image inspect` found them (`cage_images`).
        self._seen: dict[str, str] = {}

    def exists(self, ref: str) -> bool:
        if ref in self._seen:
            return True
        return self.runner.run(["podman", "image", "exists", ref], check=False).ok

    def _ids(self, *refs: str) -> list[str] | None:
        """The image IDs of `refs` in one question; None unless every one exists."""
        if all(ref in self._seen for ref in refs):
            return [self._seen[ref] for ref in refs]
        shown = self.runner.run(
            ["podman", "image", "inspect", "--format", "{{.Id}}", *refs], check=False
        )
        ids = shown.stdout.split()
        if not (shown.ok and len(ids) == len(refs)):
            return None
        self._seen.update(zip(refs, ids, strict=True))
        return ids

    def cage_images(
        self, config: CageConfig, config_dir: Path, kind: str
    ) -> tuple[BuiltImages, str]:
        """`sidecar_images` and `agent_image`, with one `podman image inspect` for all the
        images both look at when they exist (each `podman` costs about 0.3 s of CPU here)."""
        self.look_ahead(config, kind)
        return self.sidecar_images(kind), self.agent_image(config, config_dir, kind)

    def look_ahead(self, config: CageConfig, kind: str) -> None:
        """Ask once which of the images `cage_images` needs exist; builds nothing, so
        `create` asks while it waits for the host's answers. Only what no earlier look
        (`look_ahead_usual`) found is asked."""
        refs = [*self.sidecar_refs(kind)[1].values()]
        image = config.container.image
        if config.container.containerfile is None and image is not None:
            refs += self._agent_refs(image)
        unseen = [ref for ref in refs if ref not in self._seen]
        if unseen:
            self._ids(*unseen)  # remembered when all exist; else each is asked on its own

    def look_ahead_usual(self, kind: str) -> None:
        """`look_ahead` before any config is read: the sidecars on base `kind` and the
        Debian agent image (the examples' and the e2e cages'). `cage create` asks while
        the schema loads and validates; a config naming another image asks for it then."""
        sidecars = [*self.sidecar_refs(kind)[1].values()]
        if self._ids(*sidecars, *self._agent_refs(AGENT_DEBIAN_IMAGE)) is None:
            self._ids(*sidecars)  # the agent's is not there: the sidecars still count

    def _agent_refs(self, image: str) -> list[str]:
        """What `agent_image` looks at for `container.image: IMAGE`."""
        if image == AGENT_DEBIAN_IMAGE:
            return [image, self.debian_ref("agentcage-agent-debian", AGENT_DEBIAN_PACKAGES)]
        return [image]

    def _same_image(self, *refs: str) -> bool:
        """Whether every one of `refs` exists and all name the same image."""
        ids = self._ids(*refs)
        return ids is not None and len(set(ids)) == 1

    def step(self, what: str, action: Callable[[], None]) -> None:
        start = time.monotonic()
        self.progress(f"  building {what} ...")
        action()
        self.progress(f"  built {what} in {time.monotonic() - start:.0f}s")
        self.built_something = True

    # --- bases ---------------------------------------------------------------------------

    def debian_ref(self, name: str, packages: Iterable[str]) -> str:
        pkgs = sorted(set(packages))
        return f"localhost/{name}:{digest(DEBIAN_SUITE, *pkgs, *_SLIM, *debian_lock(DEBIAN_SUITE))}"

    def debian_image(self, name: str, packages: Iterable[str], alias: str | None = None) -> str:
        """`localhost/NAME:<hash>` from Debian packages, without any registry."""
        pkgs = sorted(set(packages))
        ref = self.debian_ref(name, pkgs)
        if alias and self._same_image(ref, alias):
            return ref  # one question instead of `image exists` and `tag` on every create
        if not self.exists(ref):
            self.step(
                f"{ref} from Debian {DEBIAN_SUITE} packages",
                lambda: self.import_debian(ref, DEBIAN_SUITE, pkgs),
            )
        if alias:
            self.runner.run(["podman", "tag", ref, alias])
        return ref

    def import_debian(
        self,
        ref: str,
        suite: str,
        packages: Iterable[str],
        hooks: Iterable[str] = (),
        changes: Iterable[str] = (),
    ) -> None:
        """mmdebstrap SUITE with PACKAGES (and mmdebstrap HOOKS) | podman import as REF."""
        with tempfile.TemporaryDirectory(prefix="agentcage-rootfs-") as tmp:
            tarball = Path(tmp) / "rootfs.tar"
            self.runner.run(
                [
                    "mmdebstrap",
                    "--quiet",
                    "--variant=minbase",
                    f"--include={','.join(packages)}",
                    *_SLIM,
                    *hooks,
                    suite,
                    str(tarball),
                ],
                timeout=900,
            )
            options = [f"--change={change}" for change in changes]
            self.runner.run(["podman", "import", "--quiet", *options, str(tarball), ref])

    def base_ref(self, base: str) -> str:
        """`base` as `choose_base` gives it -> the image reference the runtime starts FROM."""
        if base == "debian":
            return self.debian_ref("agentcage-base", RUNTIME_PACKAGES)
        if base == "registry":
            return REGISTRY_BASE
        if not PINNED_REF.match(base):
            raise ConfigError(f"base image {base!r} is not pinned by digest")
        return base

    def base(self, base: str) -> str:
        if base == "debian":
            return self.debian_image("agentcage-base", RUNTIME_PACKAGES)
        ref = self.base_ref(base)
        if not self.exists(ref):
            self.pull(ref, _BASE_PULL_HINT)
        return ref

    def pull(self, ref: str, hint: str) -> None:
        """`podman pull`, its progress lines shown as they come (big images take minutes)."""
        self.progress(f"  pulling {ref}")
        lines: list[str] = []

        def show(line: str) -> None:
            lines.append(line)
            self.progress(f"    {line}")

        try:
            self.runner.stream(["podman", "pull", ref], show)
        except PodmanError as exc:
            said = [line for line in lines if line.strip()] or [exc.message]
            errors = [line for line in said if line.startswith("Error")]
            raise PodmanError(f"pulling {ref} failed: {(errors or said)[-1]}", hint=hint) from exc

    # --- wheelhouse ------------------------------------------------------------------------

    @functools.cached_property
    def image_platform(self) -> ImagePlatform:
        """The platform Podman builds images on, so the one they run on."""
        arch = self.runner.run(["podman", "info", "--format", "{{.Host.Arch}}"]).stdout
        return ImagePlatform.from_podman(arch)

    def builds_native(self, image: ImagePlatform) -> bool:
        return image.built_by(*self.machine)

    def wheelhouse(self, root: Path, image: ImagePlatform | None = None) -> Path:
        """Hash-checked wheels of the locked runtime dependencies for `image` (default: the
        platform Podman builds on), fetched once per lock and platform."""
        image = image or self.image_platform
        exported = self.runner.run(
            [
                "uv",
                "export",
                "--frozen",
                "--no-dev",
                "--no-emit-project",
                "--format",
                "requirements-txt",
                "--project",
                str(root),
            ]
        ).stdout
        target = cache_dir() / "wheelhouse" / digest(exported, image.key)
        if (target / "requirements.lock").is_file():
            return target
        here = self.builds_native(image)
        self.step(
            f"wheelhouse for {image.key} (pip download --require-hashes)",
            lambda: fill_wheelhouse(self.runner, exported, target, image, build_here=here),
        )
        return target

    # --- our images ------------------------------------------------------------------------

    @functools.cache  # noqa: B019 (one builder per command; the sources do not change)
    def sidecar_refs(self, kind: str) -> tuple[str, dict[str, str]]:
        """The runtime image's tag and the sidecars' (role -> tag), from their content."""
        root = source_root()
        base = self.base_ref(kind)
        # The compiled accelerator is a build product, made again for the wheel.
        sources = [p for p in (root / "src").rglob("*") if p.suffix != ".so"]
        src = tree_digest(root, [root / "pyproject.toml", root / "hatch_build.py", *sources])
        runtime_file = root / "images" / "runtime" / "Containerfile"
        # uv.lock pins every dependency by hash, so it stands for the wheelhouse: a cached
        # image is found without running uv or pip at all.
        lock = (root / "uv.lock").read_bytes()
        runtime = (
            f"localhost/agentcage-runtime:{digest(base, runtime_file.read_bytes(), lock, src)}"
        )
        refs = {
            role: f"localhost/agentcage-{role}:"
            + digest(runtime, (root / "images" / role / "Containerfile").read_bytes())
            for role in ("proxy", "dns")
        }
        return runtime, refs

    def sidecar_images(self, kind: str) -> BuiltImages:
        """`kind` as `choose_base` gives it: debian, registry or a pinned registry image."""
        root = source_root()
        base = self.base_ref(kind)
        runtime, refs = self.sidecar_refs(kind)
        missing = []  # usually none: then one question answers for both
        if self._ids(*refs.values()) is None:
            missing = [role for role, ref in refs.items() if not self.exists(ref)]
        if missing and not self.exists(runtime):
            self.base(kind)

            def build_runtime() -> None:
                self.build_runtime(root, base, self.wheelhouse(root), runtime)

            self.step(runtime, build_runtime)
        for role in missing:
            containerfile = root / "images" / role / "Containerfile"
            build = functools.partial(
                self._build, containerfile, containerfile.parent, refs[role], {"RUNTIME": runtime}
            )
            self.step(refs[role], build)
        return BuiltImages(proxy=refs["proxy"], dns=refs["dns"], runtime=runtime)

    def build_runtime(self, root: Path, base: str, wheelhouse: Path, ref: str) -> None:
        with tempfile.TemporaryDirectory(prefix="agentcage-build-") as tmp:
            context = Path(tmp)
            shutil.copytree(wheelhouse, context / "wheelhouse")
            ours = context / "wheelhouse" / "agentcage"
            native = context / "wheelhouse" / NATIVE
            native.mkdir(exist_ok=True)
            if self.builds_native(self.image_platform):
                # For the image's Python (Debian 12's 3.11): the wheel holds a C module.
                build = ["uv", "build", "--wheel", "--quiet", "--python", "3.11"]
            else:
                # Pure Python here; the native stage compiles the accelerator for the image.
                build = ["env", "AGENTCAGE_NO_NATIVE=1", "uv", "build", "--wheel", "--quiet"]
                shutil.copy2(root / "hatch_build.py", native / "hatch_build.py")
                shutil.copy2(root / "src/agentcage/policy/_native.c", native / "_native.c")
            self.runner.run([*build, "--out-dir", str(ours), str(root)], timeout=600)
            shutil.copy2(root / "images" / "runtime" / "Containerfile", context / "Containerfile")
            # The wheel comes in through a bind mount, which podman's layer cache does not
            # see; our own content tag already decides whether to build at all.
            self._build(context / "Containerfile", context, ref, {"BASE": base}, cache=False)

    def _build(
        self,
        containerfile: Path,
        context: Path,
        ref: str,
        args: dict[str, str],
        cache: bool = True,
    ) -> None:
        argv = ["podman", "build", "--quiet", "--pull=never", "-f", str(containerfile), "-t", ref]
        if not cache:
            argv.append("--no-cache")
        for key, value in args.items():
            argv += ["--build-arg", f"{key}={value}"]
        self.runner.run([*argv, str(context)], timeout=1800)

    # --- the agent's image -----------------------------------------------------------------

    def agent_image(self, config: CageConfig, config_dir: Path, kind: str) -> str:
        ctr = config.container
        if ctr.containerfile is not None:
            containerfile = (config_dir / ctr.containerfile).resolve()
            if not containerfile.is_file():
                raise PodmanError(f"container.containerfile: {containerfile} does not exist")
            context = containerfile.parent
            files = [p for p in context.rglob("*") if p.is_file()][:5000]
            ref = f"localhost/agentcage-{config.name}-agent:{tree_digest(context, files)}"
            if not self.exists(ref):
                self.step(ref, lambda: self._build(containerfile, context, ref, {}))
            return ref
        image = ctr.image
        assert image is not None
        if image == AGENT_DEBIAN_IMAGE:
            self.debian_image("agentcage-agent-debian", AGENT_DEBIAN_PACKAGES, alias=image)
            return image
        if not self.exists(image):
            self.pull(image, _AGENT_PULL_HINT)
        return image
