"""Named host targets (`agentcage host add|list|rm`) and which one each cage runs on.

`hosts.json` in agentcage's config directory holds the SSH targets by name; a cage made
with `--host NAME` keeps `target.json` ({"host": NAME}) in its state directory, and every
later command on that cage reaches the same target without being told again. A cage
without the record runs where `PodmanHost.detect` says: this machine or the host
container (cage/host_target.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from agentcage.atomicfile import write_atomic
from agentcage.cage.asked_ahead import AskedAhead
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.destroy import CageDestroy
from agentcage.cage.host_files import RemoteFiles
from agentcage.cage.podman import PodmanHost
from agentcage.cage.remote_tail import RemoteTail
from agentcage.cage.ssh_target import SshRunner, SshTarget
from agentcage.cage.state import StateStore, config_home
from agentcage.errors import ConfigError, HostError, StateError

if TYPE_CHECKING:
    # The facade loads the config schema, images and units: `cage destroy` (destroyer_for)
    # needs none of it, so `facade` imports it when called.
    from agentcage.cage.lifecycle import Cages

REGISTRY = "hosts.json"
CAGE_RECORD = "target.json"
# `--host` on the command line wins; else this variable; else this machine.
HOST_VARIABLE = "AGENTCAGE_HOST"
LOCAL = "local"
# uid, home, cgroup v2, Podman present: what the rest needs to know about the target.
_PROBE = (
    'id -u; printf "%s\\n" "$HOME"; '
    "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo v2; else echo v1; fi; "
    "command -v podman || echo missing"
)


class RemoteHosts:
    """The user's named SSH targets."""

    def __init__(self, config_dir: Path | None = None) -> None:
        self.config_dir = config_dir or config_home()
        self.path = self.config_dir / REGISTRY

    @property
    def control_dir(self) -> Path:
        """agentcage's own known_hosts (the connection sockets are in `socket_dir()`)."""
        return self.config_dir / "ssh"

    def all(self) -> dict[str, SshTarget]:
        try:
            data = json.loads(self.path.read_text())
            return {name: SshTarget.from_dict(entry) for name, entry in data["hosts"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{self.path}: damaged host list ({exc})") from exc

    def get(self, name: str) -> SshTarget:
        found = self.all().get(name)
        if found is None:
            raise ConfigError(
                f"no host target named {name!r}",
                hint="`agentcage host list` shows them; `agentcage host add` adds one",
            )
        return found

    def runner(self, target: SshTarget, first_contact: bool = False) -> SshRunner:
        return SshRunner(target, self.control_dir, first_contact)

    def add(self, target: SshTarget) -> SshTarget:
        """Connect once (trusting and recording the host key), learn the target, keep it."""
        if target.name == LOCAL or target.name in self.all():
            raise ConfigError(
                f"a host target named {target.name!r} exists already",
                hint=f"`agentcage host rm {target.name}` first, or choose another name",
            )
        self.control_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines = self.runner(target, first_contact=True).run(["sh", "-c", _PROBE]).stdout.split("\n")
        try:
            uid, home, cgroup, podman = int(lines[0]), lines[1], lines[2], lines[3]
        except (ValueError, IndexError) as exc:
            raise HostError(f"host target {target.name}: unexpected answer {lines!r}") from exc
        if podman == "missing":
            raise HostError(
                f"{target.address} has no `podman` on its PATH",
                hint=f"install Podman 4.4 or newer and systemd on {target.host} (docs/remote.md)",
            )
        learned = replace(target, uid=uid, home=home, cgroup_v2=cgroup == "v2")
        self._save({**self.all(), learned.name: learned})
        return learned

    def remove(self, name: str, store: StateStore) -> None:
        self.get(name)
        using = [cage for cage in store.names() if cage_host(store, cage) == name]
        if using:
            raise HostError(
                f"cages still run on host target {name}: {', '.join(using)}",
                hint="destroy them first (`agentcage cage destroy NAME`)",
            )
        hosts = self.all()
        del hosts[name]
        self._save(hosts)

    def _save(self, hosts: dict[str, SshTarget]) -> None:
        data = {"hosts": {name: target.as_dict() for name, target in sorted(hosts.items())}}
        self.config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent=2) + "\n", 0o600)

    def podman_host(
        self, name: str, store: StateStore, progress: Callable[[str], None] = lambda _: None
    ) -> PodmanHost:
        """The `PodmanHost` whose commands and files reach target NAME over SSH."""
        target = self.get(name)
        runner = self.runner(target)
        return PodmanHost(
            quadlet_dir=target.quadlet_dir,
            rootless=target.rootless,
            runner=runner,
            prefix=runner.prefix,
            cgroups=not (target.rootless and not target.cgroup_v2),
            systemd_dir=target.systemd_dir,
            files=RemoteFiles(runner, store.deployments, progress=progress),
            remote=f"{target.name} ({target.address})",
        )


def cage_host(store: StateStore, cage: str) -> str | None:
    """The host target cage CAGE was created on; None for this machine."""
    data = store.read_json(cage, CAGE_RECORD)
    return str(data["host"]) if isinstance(data, dict) and data.get("host") else None


def record_cage_host(store: StateStore, cage: str, host: str) -> None:
    store.write(cage, CAGE_RECORD, json.dumps({"host": host}) + "\n")


def chosen(option: str | None) -> str | None:
    """`--host`, else $AGENTCAGE_HOST; `local` (or nothing) means this machine."""
    name = option or os.environ.get(HOST_VARIABLE) or None
    return None if name == LOCAL else name


def facade(
    store: StateStore,
    host: PodmanHost,
    progress: Callable[[str], None],
    ask_ahead: bool = False,
    base: str | None = None,
) -> Cages:
    """A `Cages`, its module imported only now (the seam tests put a fake in).

    `ask_ahead`: for `cage create`, whose first questions to HOST (asked_ahead.py) are
    asked first, so that they are answered while the module loads; with `base` (as
    `choose_base` gives it), which of the images on that base exist too."""
    asked = AskedAhead(host, base, progress=progress) if ask_ahead else None
    from agentcage.cage.lifecycle import Cages

    cages = Cages(
        store=store, host=host, builder=asked.builder if asked else None, progress=progress
    )
    cages.asked_ahead = asked
    return cages


def destroyer(store: StateStore, host: PodmanHost, progress: Callable[[str], None]) -> CageDestroy:
    """`CageDestroy` alone: none of the facade's imports (the seam tests put a fake in)."""
    return CageDestroy(store, host, progress)


def parts(store: StateStore, host: PodmanHost, progress: Callable[[str], None]) -> CageParts:
    """The store and the host alone, for `cage verify` (the seam tests put a fake in)."""
    return CageParts(store, host, progress)


def podman_host_on(
    host: str | None, store: StateStore, progress: Callable[[str], None] = lambda _: None
) -> PodmanHost:
    """Host target HOST's `PodmanHost`; None: this machine or the host container."""
    if host is None:
        return PodmanHost.detect()
    return RemoteHosts().podman_host(host, store, progress)


def podman_host_for(
    store: StateStore, cage: str, progress: Callable[[str], None] = lambda _: None
) -> PodmanHost:
    """The `PodmanHost` where cage CAGE was created: the target it recorded, else this
    machine (or the host container)."""
    return podman_host_on(cage_host(store, cage), store, progress)


def cages_on(
    host: str | None,
    store: StateStore | None = None,
    progress: Callable[[str], None] = lambda _: None,
    ask_ahead: bool = False,
    base: str | None = None,
) -> Cages:
    """`Cages` driving host target HOST (None: this machine or the host container);
    `ask_ahead` and `base` as for `facade`."""
    store = store or StateStore()
    return facade(store, podman_host_on(host, store, progress), progress, ask_ahead, base)


def cages_for(cage: str, progress: Callable[[str], None] = lambda _: None) -> Cages:
    """`Cages` driving wherever cage CAGE was created."""
    store = StateStore()
    return facade(store, podman_host_for(store, cage, progress), progress)


def destroyer_for(cage: str, progress: Callable[[str], None] = lambda _: None) -> CageDestroy:
    """What `cage destroy` needs, driving wherever CAGE was created (as `cages_for`)."""
    store = StateStore()
    return destroyer(store, podman_host_for(store, cage, progress), progress)


def parts_for(cage: str, progress: Callable[[str], None] = lambda _: None) -> CageParts:
    """What `cage verify` needs, driving wherever CAGE was created (as `cages_for`)."""
    store = StateStore()
    return parts(store, podman_host_for(store, cage, progress), progress)


def fetch_audit(store: StateStore, cage: str) -> None:
    """Bring a remote cage's audit logs here (a local cage's are here already)."""
    host = cage_host(store, cage)
    if host is not None:
        RemoteHosts().podman_host(host, store).files.collect(store.path(cage))


def follow_audit(store: StateStore, cage: str, offsets: Sequence[int]) -> RemoteTail:
    """Follow remote cage CAGE's audit logs there, each from its offset in the local copy
    (`fetch_audit` made it; `AuditLogs.hand_off` says how much of it was read)."""
    from agentcage.cage import layout  # the schema: not for `cage destroy` (destroyer_for)

    host = cage_host(store, cage)
    if host is None:
        raise StateError(f"cage {cage} runs on this machine: its logs are here")
    hosts = RemoteHosts()
    runner = hosts.runner(hosts.get(host))
    files = RemoteFiles(runner, store.deployments)
    there = [files.target_path(path) for path in layout.audit_logs(store, cage)]
    return RemoteTail(runner, there, offsets)


def release_images(cages: CageParts, cage: str, host: str | None = None) -> list[str]:
    """Before destroying CAGE on a remote target: agentcage's images there no other cage uses.

    Images reach a target only by being copied for its cages (an update copies new ones
    and leaves the old), so once no cage there uses one, nothing there needs it. Locally
    built images stay on this machine: they are its build cache. HOST: the target of a
    cage whose state is gone already (a create rolled back).

    A Podman machine's store is the one this machine's Podman client builds into, so
    what is there is the build cache itself, never a copy: nothing is released.
    """
    host = host or cage_host(cages.store, cage)
    if host is None:
        return []
    from agentcage.cage import layout
    from agentcage.cage.deploy import OUR_IMAGE, RUNTIME_IMAGE

    known = RemoteHosts().all().get(host)
    if known is not None and known.machine:
        return []
    kept: set[str] = set()
    for other in cages.store.names():
        if other != cage and cage_host(cages.store, other) == host:
            try:
                used = layout.load_images(cages.store, other)
            except (StateError, TypeError):
                continue
            kept |= {used.proxy, used.dns, used.agent}
    listed = cages.host.podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False)
    ours = [ref for ref in listed.stdout.split() if OUR_IMAGE.match(ref) and ref not in kept]
    # Children before the runtime image they are built on.
    return sorted(dict.fromkeys(ours), key=lambda ref: ref.startswith(RUNTIME_IMAGE))


def remove_images(cages: CageParts, refs: list[str]) -> None:
    """`podman rmi` there; one a container still uses is refused by Podman and kept."""
    for ref in refs:
        cages.host.podman("rmi", ref, check=False)
