"""A cage's real secrets: kept as Podman secrets, mounted into the proxy only.

Values arrive on stdin or from a prompt (never argv, where `ps` shows them) and are
never printed. A secret reaches the proxy as the file `/run/secrets/agentcage/NAME`.
Podman copies mounted secrets when a container is created, so changing one restarts
the cage's proxy. The agent keeps running: it only loses its way out for the second
the proxy takes to come back.
"""

from __future__ import annotations

import re

from agentcage.cage import topology
from agentcage.cage.contract import secret_id, service_name
from agentcage.cage.lifecycle import Cages
from agentcage.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(
            f"{name!r} is not a secret name",
            hint="use the env name from secret_injection, e.g. ANTHROPIC_API_KEY",
        )


def expected(cages: Cages, cage: str) -> list[str]:
    return [rule.env for rule in cages.store.load_config(cage).secret_injection]


def set_secret(cages: Cages, cage: str, name: str, value: str) -> bool:
    """Store the value; returns True when a running proxy was restarted to pick it up."""
    check_name(name)
    cages.store.load_config(cage)  # the cage must exist
    if not value:
        raise ConfigError(f"secret {name}: the value is empty")
    ident = secret_id(cage, name)
    cages.host.podman("secret", "rm", ident, check=False)
    cages.host.podman("secret", "create", ident, "-", input=value)
    return _apply(cages, cage)


def remove_secret(cages: Cages, cage: str, name: str) -> bool:
    check_name(name)
    if name not in cages.secret_names(cage):
        raise ConfigError(f"cage {cage!r} has no secret {name!r}")
    cages.host.podman("secret", "rm", secret_id(cage, name))
    return _apply(cages, cage)


def _apply(cages: Cages, cage: str) -> bool:
    """Re-render the proxy unit with the current secret mounts; restart it if running."""
    if cages.store.read_json(cage, "images.json") is None:
        return False
    running = cages.is_running(cage)
    cages.write_units(cages.store.load_config(cage))
    cages.host.systemctl("daemon-reload")
    topo = topology.load(cages.store, cage)
    if running and topo is not None:
        # The agent `Requires=` the proxy, and a plain restart would take it along (and
        # with it whatever the agent was in the middle of).
        proxy = service_name(topo, "proxy")
        cages.host.systemctl("restart", "--job-mode=ignore-dependencies", proxy)
        cages.host.systemctl("start", service_name(topo, "agent"))
        return True
    return False
