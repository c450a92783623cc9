"""The cage's three roles as the guest runs them, read from the units container mode writes.

`build_units(CageSpec)` is the one description of a cage; this module reads its container
units (Exec, Environment, User, Volume, Tmpfs, DNS, ReadOnly, DropCapability,
NoNewPrivileges, Secret, Sysctl) and turns each into the request the guest agent's `start`
takes: argv, environment, uid and gid, and a sandbox (guest_sandbox.py). Nothing about a
role is spelled a second time here; what the guest cannot do the same way is refused with
the reason, never dropped.

Where things go in the guest:

* The sidecars run on the guest's own root (the same venv and entrypoint as the runtime
  image), in the guest's network namespace, which holds the one NIC.
* The agent runs on its image's files, unpacked onto a read-only drive (labelled
  `AGENT_ROOT_LABEL`), in the network namespace `AGENT_NETNS`, whose only link leads to
  the proxy's and DNS sidecar's addresses. Its read-only bind mounts are copied onto that
  drive at their targets when it is made (a snapshot). Each named volume is a writable
  drive of its own (volume_drive.py), bound at its target. Each writable bind mount (the
  workspace) is shared live with the host through virtiofs (virtiofs.py; QEMU only),
  mounted under `GUEST_SHARES` and bound at its target.
* Host paths of the cage's state directory appear under `GUEST_STATE` at the same
  relative path; the host copies in what a role reads (config, CA) through the agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentcage.cage.contract import SECRETS_DIR, STEERING_MODULE, VENV_BIN
from agentcage.cage.quadlet import CageUnits
from agentcage.cage.topology import Topology
from agentcage.cage.unit import UnitFile
from agentcage.cage.vm.virtiofs import GUEST_SHARES, WRITABLE_BIND_HINT, guest_share_point
from agentcage.cage.vm.volume_drive import GUEST_VOLUMES, guest_mount_point
from agentcage.errors import VmmError

RUN_ROOT = "/run/agentcage"  # the guest agent's tmpfs (guest_agent.py)
GUEST_STATE = f"{RUN_ROOT}/state"
AGENT_ROOT = f"{RUN_ROOT}/agent-root"
# The sidecars' resolvers (the config's `dns_servers`, else the host's), written per boot:
# the guest's root is shared by every cage and read-only.
SIDECAR_RESOLV = f"{RUN_ROOT}/resolv.conf"  # the agent root drive's mount point
AGENT_ROOT_LABEL = "agentroot"
AGENT_NETNS = "agent"
ROLES = ("dns", "proxy", "agent")  # start order: the agent last, as its unit's After= says
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageFacts:
    """What a container takes from its image besides files: entrypoint, cmd, env, workdir."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"


# The runtime image the sidecars run (images/runtime/Containerfile): its entrypoint.
SIDECAR_IMAGE = ImageFacts(entrypoint=(f"{VENV_BIN}/agentcage",), env={"PATH": _PATH})


@dataclass(frozen=True)
class GuestRole:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    uid: int
    gid: int
    sandbox: dict[str, Any]
    # Host directories of the state the role mounts: (host path, writable by the role).
    state_dirs: tuple[tuple[Path, bool], ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    # Files the host writes under GUEST_STATE for this role: (relative path, content).
    files: tuple[tuple[str, str], ...] = ()
    # Default deny's setup for this role's namespace: the steering module's arguments from
    # the unit's setup line (`proxy ADDRESS DENY_PORT PORT...`, `agent ADDRESS`), or none.
    steering: tuple[str, ...] = ()
    # The cage's named volumes this role mounts (their config names; volume_drive.py).
    volumes: tuple[str, ...] = ()
    # The host directories this role mounts writable, each a virtiofs share (virtiofs.py).
    shares: tuple[str, ...] = ()

    def start_request(self) -> dict[str, Any]:
        """The guest agent's `start` arguments."""
        return {
            "name": self.name,
            "argv": list(self.argv),
            "env": self.env,
            "uid": self.uid,
            "sandbox": self.sandbox,
        }


def guest_path(state_dir: Path, host: Path) -> str:
    """Where a host path of the cage's state directory is in the guest."""
    try:
        return f"{GUEST_STATE}/{host.relative_to(state_dir)}"
    except ValueError:
        raise VmmError(f"{host} is not in the cage's state directory {state_dir}") from None


def guest_roles(
    units: CageUnits,
    topology: Topology,
    state_dir: Path,
    agent_image: ImageFacts,
    shares: bool = False,
) -> list[GuestRole]:
    """dns, proxy and agent, in start order; `VmmError` for what the guest cannot honour.

    `shares`: the monitor can share a host directory live (QEMU's virtiofs), so the
    agent's writable bind mounts are taken; without (Firecracker) they are refused."""
    extra = (
        set(units.files)
        - {f"{topology.container(role)}.container" for role in ROLES}
        - {f"{topology.internal_network}.network", f"{topology.external_network}.network"}
        # Named volumes: drives of their own, read from the agent's `Volume=` lines.
        - {name for name in units.files if name.endswith(".volume")}
    )
    if extra:
        raise VmmError(
            "a microVM cage cannot have " + ", ".join(sorted(extra)) + " yet",
            hint="remove `container.ports` for `isolation: firecracker` (docs/microvm.md)",
        )
    roles = []
    for role in ROLES:
        unit = units.files[f"{topology.container(role)}.container"]
        image = agent_image if role == "agent" else SIDECAR_IMAGE
        roles.append(_role(role, unit, image, state_dir, f"{topology.prefix}-", shares))
    return roles


def _values(unit: UnitFile, key: str) -> list[str]:
    return [v for v in unit.get("Container", key) if isinstance(v, str)]


def _words(unit: UnitFile, key: str) -> list[str]:
    return [w for v in unit.get("Container", key) if isinstance(v, tuple) for w in v]


def _flag(unit: UnitFile, key: str) -> bool:
    return "true" in _values(unit, key)


def _steering(unit: UnitFile) -> tuple[str, ...]:
    """The steering module's arguments in the unit's `ExecStartPost=` (steering_entry.py)."""
    for value in unit.get("Service", "ExecStartPost"):
        words = list(value) if isinstance(value, tuple) else str(value).split()
        if STEERING_MODULE in words:
            return tuple(words[words.index(STEERING_MODULE) + 1 :])
    return ()


def _role(
    name: str,
    unit: UnitFile,
    image: ImageFacts,
    state_dir: Path,
    volume_prefix: str,
    can_share: bool = False,
) -> GuestRole:
    agent = name == "agent"
    if not _flag(unit, "ReadOnly"):
        raise VmmError(f"the {name} role must have a read-only root in a microVM")
    if _values(unit, "DropCapability") != ["ALL"] or _values(unit, "AddCapability"):
        raise VmmError(
            f"the {name} role runs with no capabilities in a microVM",
            hint="keep `container.drop_capabilities: ALL` and no `add_capabilities`",
        )
    if not _flag(unit, "NoNewPrivileges"):
        raise VmmError(f"the {name} role runs with no_new_privileges in a microVM")
    user = _values(unit, "User")
    group = _values(unit, "Group")
    if not user or int(user[0]) == 0:
        raise VmmError(
            f"the {name} role runs as a non-root user in a microVM",
            hint="set `container.user` to a non-zero `UID:GID`",
        )
    uid = int(user[0])
    gid = int(group[0]) if group else uid
    env = dict(image.env)
    for word in _words(unit, "Environment"):
        key, _, value = word.partition("=")
        env[key] = value
    binds: list[tuple[str, str, bool]] = []
    state_dirs: list[tuple[Path, bool]] = []
    volumes: list[str] = []
    shares: list[str] = []
    for volume in _values(unit, "Volume"):
        source, target, *rest = volume.split(":")
        options = rest[0].split(",") if rest else []
        host = Path(source)
        if agent and source.endswith(".volume"):
            named = source.removesuffix(".volume").removeprefix(volume_prefix)
            volumes.append(named)
            binds.append((guest_mount_point(named), target, "ro" in options))
        elif host == state_dir or state_dir in host.parents:
            binds.append((guest_path(state_dir, host), target, "ro" in options))
            state_dirs.append((host, "ro" not in options))
        elif agent and "ro" in options:
            continue  # copied onto the agent's root drive at `target` (agent_root.py)
        elif agent and can_share:
            shares.append(source)
            binds.append((guest_share_point(source), target, False))
        elif agent:
            raise VmmError(
                f"volume {volume!r} of the agent: Firecracker has no shared-filesystem "
                "device, so a microVM cage on it cannot give the agent a writable bind mount",
                hint=WRITABLE_BIND_HINT,
            )
        else:
            raise VmmError(f"volume {volume!r} of the {name} role is outside the cage's state")
    files = []
    if not agent:
        binds.append((SIDECAR_RESOLV, "/etc/resolv.conf", True))
    for server in _values(unit, "DNS"):
        files.append((f"{name}/resolv.conf", f"nameserver {server}\noptions ndots:0\n"))
        binds.append((f"{GUEST_STATE}/{name}/resolv.conf", "/etc/resolv.conf", True))
    for secret in _values(unit, "Secret"):
        target = dict(p.partition("=")[::2] for p in secret.split(",")[1:]).get("target", "")
        if agent or not target.startswith(f"{SECRETS_DIR}/"):
            raise VmmError(
                f"secret {secret.split(',')[0]!r} of the {name} role: in a microVM only the "
                f"proxy's secrets exist, on the secrets drive at {SECRETS_DIR}",
                hint="agent-side `container.podman_secrets` are not supported yet",
            )
    tmpfs = [tuple(t.split(":", 1)) if ":" in t else (t, "") for t in _values(unit, "Tmpfs")]
    sysctls = tuple(
        (key, value) for key, _, value in (s.partition("=") for s in _values(unit, "Sysctl"))
    )
    exec_words = tuple(_words(unit, "Exec")) or image.cmd
    # A sidecar runs on the guest's root: hide what its container would not have.
    hidden = [GUEST_STATE, f"{RUN_ROOT}/logs", AGENT_ROOT, GUEST_VOLUMES, GUEST_SHARES]
    if not _values(unit, "Secret"):
        hidden.append(SECRETS_DIR)
    sandbox: dict[str, Any] = {
        "root": AGENT_ROOT if agent else "/",
        "netns": AGENT_NETNS if agent else None,
        "binds": binds,
        "tmpfs": tmpfs,
        "mask": [] if agent else hidden,
        "cwd": image.workdir if agent else "/",
        "no_new_privs": True,
        "uid": uid,
        "gid": gid,
    }
    return GuestRole(
        name=name,
        argv=(*image.entrypoint, *exec_words),
        env=env,
        uid=uid,
        gid=gid,
        sandbox=sandbox,
        state_dirs=tuple(state_dirs),
        sysctls=sysctls,
        files=tuple(files),
        steering=_steering(unit),
        volumes=tuple(volumes),
        shares=tuple(shares),
    )
