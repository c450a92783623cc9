"""Bring a cage up inside a booted guest: its network, its state, its three roles.

The guest agent does each step on request (guest_agent.py, guest_sandbox.py); the roles
come from the cage's units (guest_roles.py). Order: the agent's network namespace, the
agent's root drive, the state each role mounts (copied from the host's state directory,
owned as the containers' `:U` volumes would be), the sidecars, and the agent only once
both sidecars accept connections, as its unit waits for them in container mode.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentcage.cage.contract import (
    CA_VARIABLES,
    CONFIG_DIR,
    NETCHECK_MODULE,
    PROXY_VARIABLES,
    PYTHON,
    SECRETS_DIR,
    SIDECAR_USER,
)
from agentcage.cage.steering import DNS_OPTION
from agentcage.cage.topology import DNS_PORT, PROXY_PORT, Topology
from agentcage.cage.vm.guest_roles import (
    AGENT_NETNS,
    AGENT_ROOT,
    AGENT_ROOT_LABEL,
    GUEST_STATE,
    RUN_ROOT,
    SIDECAR_RESOLV,
    GuestRole,
)
from agentcage.cage.vm.virtiofs import GUEST_SHARES, guest_share_point, share_tag
from agentcage.cage.vm.volume_drive import GUEST_VOLUMES, guest_mount_point, volume_label
from agentcage.config.host import parse_server
from agentcage.errors import VmmError

Ask = Callable[..., dict[str, Any]]
# The steering module's Python start under TCG, and the agent's 10 s route check.
STEER_SECONDS = 90


def _relative(guest: str) -> str:
    """A guest path under /run/agentcage as the agent's file operations take it."""
    return guest.removeprefix(f"{RUN_ROOT}/")


def agent_network(ask: Ask, topology: Topology) -> None:
    prefix = ipaddress.IPv4Network(topology.internal_subnet).prefixlen
    ask(
        "netns",
        netns=AGENT_NETNS,
        guest=[f"{topology.proxy_ip}/{prefix}", f"{topology.dns_ip}/{prefix}"],
        agent=f"{topology.agent_ip}/{prefix}",
    )


def copy_state(ask: Ask, roles: list[GuestRole], state_dir: Path) -> None:
    """Each role's state directories and files, into the guest under GUEST_STATE."""
    ask("mkdir", path=_relative(GUEST_STATE), uid=0, mode=0o755)
    # A directory one sidecar writes and another reads (the fingerprints) is the writer's,
    # as its `:U` volume makes it in container mode.
    owners: dict[Path, int] = {}
    for role in roles:
        for host, writable in role.state_dirs:
            owner = int(SIDECAR_USER) if writable and role.name != "agent" else 0
            owners[host] = max(owners.get(host, 0), owner)
    for host, owner in owners.items():
        _copy(ask, state_dir, host, owner)
    for role in roles:
        if role.files:
            ask("mkdir", path=_relative(f"{GUEST_STATE}/{role.name}"), uid=0, mode=0o755)
        for relative, content in role.files:
            ask(
                "write",
                path=_relative(f"{GUEST_STATE}/{relative}"),
                content=content,
                mode=0o644,
                uid=0,
            )


def _copy(ask: Ask, state_dir: Path, host: Path, owner: int) -> None:
    parts = host.relative_to(state_dir).parts
    for depth in range(1, len(parts) + (0 if host.is_file() else 1)):
        directory = "/".join(parts[:depth])
        mode = 0o700 if owner else 0o755
        ask("mkdir", path=_relative(f"{GUEST_STATE}/{directory}"), uid=owner, mode=mode)
    files = [host] if host.is_file() else sorted(p for p in host.rglob("*") if p.is_file())
    for path in files:
        if path.is_socket():
            continue
        relative = path.relative_to(state_dir)
        ask(
            "write",
            path=_relative(f"{GUEST_STATE}/{relative}"),
            content=path.read_text(encoding="utf-8"),
            mode=path.stat().st_mode & 0o777,
            uid=owner,
        )


def start_cage(
    ask: Ask,
    roles: list[GuestRole],
    topology: Topology,
    state_dir: Path,
    deadline: float,
    resolvers: list[str],
) -> dict[str, float]:
    """Everything above; returns each sidecar's seconds from its start to listening.

    `resolvers` are the sidecars' upstream DNS servers (`effective_dns_servers()`),
    reached through the guest's one NIC.
    """
    agent_network(ask, topology)
    lines = "".join(f"nameserver {parse_server(server)[0]}\n" for server in resolvers)
    ask("write", path=_relative(SIDECAR_RESOLV), content=lines, mode=0o644, uid=0)
    ask("drive", label=AGENT_ROOT_LABEL, path=_relative(AGENT_ROOT))
    for name in (name for role in roles for name in role.volumes):
        mount_point = _relative(guest_mount_point(name))
        ask("drive", label=volume_label(name), path=mount_point, writable=True)
    for host in (host for role in roles for host in role.shares):
        ask("share", tag=share_tag(host), path=_relative(guest_share_point(host)))
    copy_state(ask, roles, state_dir)
    # The sidecars share the guest's network namespace, so they share its one
    # unprivileged-port floor: the lowest either asks for (53, the DNS sidecar's).
    floors: dict[str, int] = {}
    for role in roles:
        for name, value in role.sysctls:
            floors[name] = min(floors.get(name, int(value)), int(value))
    for name, floor in floors.items():
        ask("sysctl", name=name, value=str(floor))
    steer(ask, roles, topology, "proxy")
    waits = {"dns": (topology.dns_ip, DNS_PORT), "proxy": (topology.proxy_ip, PROXY_PORT)}
    started: dict[str, float] = {}
    for role in roles:
        if role.name == "agent":
            for name, (address, port) in waits.items():
                started[name] = _listening(ask, name, address, port, deadline) - started[name]
            steer(ask, roles, topology, "agent")
        else:
            started[role.name] = time.monotonic()
        ask("start", **role.start_request())
    return started


def steer(ask: Ask, roles: list[GuestRole], topology: Topology, name: str) -> None:
    """Default deny (docs/transparent.md) in the guest, from the units' steering lines.

    `proxy`: the redirects in the guest's namespace, where the DNS sidecar's address sits
    beside the proxy's, so its port 53 is left alone. `agent`: the agent's default route
    via the proxy, kept only once a flow through it reaches the deny listener, so it runs
    after the proxy listens and before the agent starts. The guest's kernel and tools are
    the image's, so a failure here is a broken image: the cage does not come up.
    """
    words = next((role.steering for role in roles if role.name == name), ())
    if not words:
        # `network.transparent: false`, or no such role (a plan without roles: the
        # tests' bare machines): no route, flows fail unaudited as before.
        return
    args = list(words[1:])
    if name == "proxy":
        args += [DNS_OPTION, topology.dns_ip]
    ask("steer", STEER_SECONDS, role=words[0], args=args, netns=AGENT_NETNS)


def _listening(ask: Ask, name: str, address: str, port: int, deadline: float) -> float:
    while True:
        if ask("connect", 10, address=address, port=port, timeout=2)["connected"]:
            return time.monotonic()
        exited = ask("status")["roles"].get(name)
        if exited is not None or time.monotonic() > deadline:
            log = ask("read", path=f"logs/{name}.log")["content"][-1500:]
            state = f"exited {exited}" if exited is not None else "is not listening in time"
            raise VmmError(f"the guest's {name} {state}: {log}")
        time.sleep(1)


def reload_cage(ask: Ask, roles: list[GuestRole], state_dir: Path) -> list[str]:
    """The sidecars' config, copied in again, and SIGHUP to each: `domain add` with no restart.

    The host has re-rendered the config in its state directory (layout.py) as for a
    container cage; returns the roles signalled.
    """
    signalled = []
    for role in roles:
        sources = [source for source, target, _ in role.sandbox["binds"] if target == CONFIG_DIR]
        if role.name == "agent" or not sources:
            continue
        for source in sources:
            _copy(ask, state_dir, state_dir / source.removeprefix(f"{GUEST_STATE}/"), 0)
        ask("signal", name=role.name, signal=int(signal.SIGHUP))
        signalled.append(role.name)
    return signalled


def set_secret(ask: Ask, name: str, value: str | None) -> None:
    """`secret set` (or `rm`, with None) on a running cage: into the guest, then the
    proxy re-reads its secrets (SIGHUP), as its reload does for its config."""
    ask("secret", name=name, value=value, uid=int(SIDECAR_USER))
    ask("signal", name="proxy", signal=int(signal.SIGHUP))


def verify_network(
    ask: Ask,
    agent: GuestRole,
    gateway: str,
    allowed: str | None,
    proxy: str | None,
    deadline: float,
    steered: bool = False,
) -> list[dict[str, Any]]:
    """`cage verify`'s network checks from inside the guest, with exactly the agent's view.

    As container mode runs them (verify_network.py): the netcheck module of the sidecars'
    venv (the guest's root), as the sidecar user, in the agent's network namespace with
    its resolver, CA and proxy variables. `gateway` is the
    guest NIC's far end, which must be unreachable from there; `steered`: the namespace has
    default deny's route via the proxy, so a flow there must end at the deny listener
    (netcheck's `--steered`).
    """
    # The checks need the agent's CA and resolver, not its volumes or shares (whose
    # targets the guest's read-only root does not have).
    binds = [
        bind
        for bind in agent.sandbox["binds"]
        if bind[1] != "/etc/resolv.conf"
        and not bind[0].startswith((f"{GUEST_VOLUMES}/", f"{GUEST_SHARES}/"))
    ]
    resolv = [bind for bind in agent.sandbox["binds"] if bind[1] == "/etc/resolv.conf"]
    sandbox = {
        **agent.sandbox,
        "root": "/",
        "binds": [*binds, *resolv],
        "mask": [
            GUEST_STATE,
            f"{RUN_ROOT}/logs",
            AGENT_ROOT,
            GUEST_VOLUMES,
            GUEST_SHARES,
            SECRETS_DIR,
        ],
        "cwd": "/",
        "uid": int(SIDECAR_USER),
        "gid": int(SIDECAR_USER),
    }
    argv = [PYTHON, "-m", NETCHECK_MODULE, "--gateway", gateway]
    argv += ["--allowed-host", allowed] if allowed else []
    argv += ["--proxy", proxy] if proxy else []
    argv += ["--steered"] if steered and proxy else []
    keys = (*PROXY_VARIABLES, *CA_VARIABLES, "NO_PROXY", "no_proxy")
    env = {key: agent.env[key] for key in keys if key in agent.env}
    ask("start", name="verify", argv=argv, env=env, uid=int(SIDECAR_USER), sandbox=sandbox)
    while ask("status")["roles"].get("verify") is None:
        if time.monotonic() > deadline:
            ask("signal", name="verify", signal=int(signal.SIGTERM))
            raise VmmError("the network checks in the guest did not finish in time")
        time.sleep(1)
    output = ask("read", path="logs/verify.log")["content"].strip().splitlines()
    try:
        rows: list[dict[str, Any]] = json.loads(output[-1])
    except (ValueError, IndexError) as exc:
        raise VmmError(f"the network checks in the guest failed: {output[-5:]}") from exc
    return rows
