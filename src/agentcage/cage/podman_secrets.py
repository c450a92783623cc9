"""A cage's real secrets: kept as Podman secrets, mounted into the proxy only.

Values arrive on stdin or from a prompt (never argv, where `ps` shows them) and are
never printed. A secret reaches the proxy as the file `/run/secrets/agentcage/NAME`.
Podman copies mounted secrets when a container is created, so changing one restarts
the cage's proxy whenever the proxy runs, whether or not the agent does. A running agent
keeps running: it only loses its way out for the second the proxy takes to come back.
A stopped cage gets the secret when it next starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentcage.cage import layout, running, topology
from agentcage.cage.contract import SECRET_NAME, secret_id, service_name
from agentcage.cage.lifecycle import Cages
from agentcage.cage.running import VM
from agentcage.cage.vm import vm_control
from agentcage.errors import ConfigError

_RUNNING = ("active", "activating", "reloading")


def check_name(name: str) -> None:
    if not SECRET_NAME.match(name):
        raise ConfigError(
            f"{name!r} is not a secret name",
            hint="use the env name from secret_injection, e.g. ANTHROPIC_API_KEY",
        )


def expected(cages: Cages, cage: str) -> list[str]:
    return [rule.env for rule in cages.store.load_config(cage).secret_injection]


def set_secret(cages: Cages, cage: str, name: str, value: str) -> list[str]:
    """Store the value; returns the units restarted to pick it up (none if stopped)."""
    check_name(name)
    cages.store.load_config(cage)  # the cage must exist
    if not value:
        raise ConfigError(f"secret {name}: the value is empty")
    before = _before(cages, cage)
    ident = secret_id(cage, name)
    cages.host.podman("secret", "rm", ident, check=False)
    cages.host.podman("secret", "create", ident, "-", input=value)
    return _apply(cages, cage, before, (name, value))


def remove_secret(cages: Cages, cage: str, name: str) -> list[str]:
    check_name(name)
    if name not in cages.secret_names(cage):
        raise ConfigError(f"cage {cage!r} has no secret {name!r}")
    before = _before(cages, cage)
    cages.host.podman("secret", "rm", secret_id(cage, name))
    return _apply(cages, cage, before, (name, None))


@dataclass(frozen=True)
class _Before:
    """What ran before a secret changed; asked first, so an unreachable systemd changes nothing."""

    proxy: str
    agent: str
    proxy_running: bool
    agent_running: bool


def _before(cages: Cages, cage: str) -> _Before | None:
    """None for a cage that was never deployed (no units to change)."""
    topo = topology.load(cages.store, cage)
    if topo is None or cages.store.read_json(cage, layout.IMAGES_FILE) is None:
        return None
    proxy, agent = service_name(topo, "proxy"), service_name(topo, "agent")
    if vm_control.is_vm(cages.store, cage):
        proxy = agent = service_name(topo, VM)
    proxy_state = running.unit_state(cages.host, proxy)
    agent_state = running.unit_state(cages.host, agent)
    return _Before(proxy, agent, proxy_state in _RUNNING, agent_state == "active")


def _apply(
    cages: Cages, cage: str, before: _Before | None, change: tuple[str, str | None]
) -> list[str]:
    """Re-render the proxy unit with the current secret mounts; restart the proxy if it runs.

    Whether the agent runs does not matter: an agent that exited leaves a proxy that still
    serves (and the next agent start finds it), and it must hold the new value.
    """
    if before is None:
        return []
    config = cages.store.load_config(cage)
    cages.apply_units(config)
    if config.isolation == "firecracker":
        # Live, in the guest's memory; the re-rendered unit mounts it at the next start.
        if not before.proxy_running:
            return []
        vm_control.secret(cages.store, cage, *change)
        return ["the guest's proxy (live)"]
    if not before.proxy_running:
        return []
    # The agent `Requires=` the proxy, and a plain restart would take it along (and
    # with it whatever the agent was in the middle of).
    cages.host.systemctl("restart", "--job-mode=ignore-dependencies", before.proxy)
    if before.agent_running:
        cages.host.systemctl("start", before.agent)  # a no-op unless the restart stopped it
    return [before.proxy]
