"""The host container's image: systemd as PID 1 with Podman 5, from Debian trixie packages.

Built without any registry (mmdebstrap | podman import), like the registry-free bases.
`agentcage host start` builds it when missing; `scripts/setup-host` builds it through
`agentcage host image` and tags it `localhost/agentcage-harness:latest` for the e2e
harness, so this is the one recipe for both.

Podman inside uses cgroupfs and a file event log (there is no D-Bus or journald to talk
to), ulimits within this machine's hard limits (Podman asks for more and fails with
`setrlimit: Operation not permitted` otherwise), and reads this machine's images through
a read-only additional image store mounted at /var/lib/shared: images are built outside
with the machine's own Podman and never copied.
"""

from __future__ import annotations

import resource
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from agentcage.cage.host_target import SHARED_STORE, UNIT_DIR
from agentcage.cage.image_inputs import debian_lock, digest
from agentcage.cage.images import ImageBuilder

HOST_IMAGE = "localhost/agentcage-host"
HOST_SUITE = "trixie"
HOST_PACKAGES = (
    "aardvark-dns",
    "ca-certificates",
    "catatonit",
    "conmon",
    "crun",
    # mkfs.ext4 and debugfs: a microVM cage's agent drive is made where `cage create` runs,
    # inside for a rootless user of the container (tests/e2e/test_microvm.py).
    "e2fsprogs",
    "iptables",
    "netavark",
    "nftables",
    "passt",
    "podman",
    "procps",
    "systemd",
    "systemd-sysv",
    "uidmap",
)
# Debian 12 as `apt install podman` leaves it: Podman 4.3.1, which has no quadlet (cages get
# plain services, service_units.py), and the recommends rootless cages need: slirp4netns,
# and dbus-user-session, through which Podman moves slirp4netns out of the first
# container's unit (without it, restarting that unit cuts every rootless container off).
# The end-to-end tests run the same tests in it (tests/e2e/test_podman43.py).
DEBIAN12_IMAGE = "localhost/agentcage-host-debian12"
DEBIAN12_SUITE = "bookworm"
DEBIAN12_PACKAGES = (
    "aardvark-dns",
    "ca-certificates",
    "catatonit",
    "conmon",
    "crun",
    "dbus-user-session",
    "iptables",
    "netavark",
    "podman",
    "procps",
    "slirp4netns",
    "systemd",
    "systemd-sysv",
    "uidmap",
)
# Nothing to log in on, no logind without D-Bus, no modules to load from a container.
MASKED_UNITS = (
    "getty.target",
    "console-getty.service",
    "systemd-logind.service",
    "systemd-modules-load.service",
)
CHANGES = ('CMD ["/usr/lib/systemd/systemd"]', "STOPSIGNAL SIGRTMIN+3")
# Podman refuses more than this many processes per container on some kernels.
NPROC_CEILING = 32768
NOFILE_UNLIMITED = 1048576


@dataclass(frozen=True)
class HostImageRecipe:
    """What goes into the image; `ref` is a hash of all of it."""

    nofile: int
    nproc: int
    suite: str = HOST_SUITE
    packages: tuple[str, ...] = HOST_PACKAGES
    image: str = HOST_IMAGE

    def debian12(self) -> HostImageRecipe:
        """The same for Debian 12 with its own Podman 4.3.1 (the tests' second host)."""
        return replace(self, suite=DEBIAN12_SUITE, packages=DEBIAN12_PACKAGES, image=DEBIAN12_IMAGE)

    @classmethod
    def for_this_machine(cls) -> HostImageRecipe:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        if nofile == resource.RLIM_INFINITY:
            nofile = NOFILE_UNLIMITED
        if nproc == resource.RLIM_INFINITY or nproc > NPROC_CEILING:
            nproc = NPROC_CEILING
        return cls(nofile, nproc)

    def files(self) -> dict[str, str]:
        """Path in the image -> content."""
        return {
            "/etc/containers/containers.conf": (
                "[containers]\n"
                f'default_ulimits = ["nofile={self.nofile}:{self.nofile}", '
                f'"nproc={self.nproc}:{self.nproc}"]\n\n'
                "[engine]\n"
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
                'runtime = "crun"\n'
            ),
            "/etc/containers/storage.conf": (
                "[storage]\n"
                'driver = "overlay"\n'
                'runroot = "/run/containers/storage"\n'
                'graphroot = "/var/lib/containers/storage"\n\n'
                "[storage.options]\n"
                f'additionalimagestores = ["{SHARED_STORE}"]\n'
            ),
            # Podman 5 warns on every command of a cgroup v1 host otherwise. A process
            # that ignores SIGTERM (a container started by hand) would hold `host stop`
            # for systemd's default 90 s; the cages' own units stop in well under 10 s.
            "/etc/systemd/system.conf.d/agentcage.conf": (
                "[Manager]\nDefaultEnvironment=PODMAN_IGNORE_CGROUPSV1_WARNING=1\n"
                "DefaultTimeoutStopSec=10s\n"
            ),
        }

    def ref(self) -> str:
        files = [f"{path}\0{text}" for path, text in sorted(self.files().items())]
        locked = debian_lock(self.suite)
        tag = digest(self.suite, *self.packages, *files, *MASKED_UNITS, *CHANGES, *locked)
        return f"{self.image}:{tag}"

    def hooks(self, staging: Path) -> list[str]:
        """mmdebstrap hooks that put `files()` (written under `staging`) into the image."""
        directories = {str(Path(path).parent) for path in self.files()}
        directories |= {SHARED_STORE, UNIT_DIR}
        made = " ".join(f'"$1{d}"' for d in sorted(directories))
        hooks = [f"--customize-hook=mkdir -p {made}"]
        for index, (path, text) in enumerate(sorted(self.files().items())):
            source = staging / f"{index}-{Path(path).name}"
            source.write_text(text)
            hooks.append(f"--customize-hook=upload {source} {path}")
        masked = " ".join(MASKED_UNITS)
        hooks.append(f'--customize-hook=chroot "$1" systemctl mask {masked} >/dev/null')
        return hooks


def host_image(builder: ImageBuilder, recipe: HostImageRecipe | None = None) -> str:
    """The host container image's ref, built first if this machine lacks it (~1 minute)."""
    recipe = recipe or HostImageRecipe.for_this_machine()
    ref = recipe.ref()
    if builder.exists(ref):
        return ref

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="agentcage-host-image-") as tmp:
            hooks = recipe.hooks(Path(tmp))
            builder.import_debian(ref, recipe.suite, recipe.packages, hooks, CHANGES)

    builder.step(f"{ref} from Debian {recipe.suite} packages (systemd, Podman)", build)
    return ref
