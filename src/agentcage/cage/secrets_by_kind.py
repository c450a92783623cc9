"""A cage's real secrets, wherever the cage runs: Podman secrets on this machine
(podman_secrets.py) or a Kubernetes Secret in the cage's namespace (kube/kube_secrets.py).

Each function returns what it restarted (systemd units, or Deployments rolled) so the
change reaches the proxy; the agent keeps running either way.
"""

from __future__ import annotations

from agentcage.cage import podman_secrets
from agentcage.cage.kube.kube_record import is_kube
from agentcage.cage.lifecycle import Cages
from agentcage.errors import ConfigError


def set_secret(cages: Cages, cage: str, name: str, value: str) -> list[str]:
    podman_secrets.check_name(name)
    if not is_kube(cages.store, cage):
        return podman_secrets.set_secret(cages, cage, name, value)
    if not value:
        raise ConfigError(f"secret {name}: the value is empty")
    from agentcage.cage.kube import kube_secrets

    return kube_secrets.set_secret(cages.store, cage, name, value)


def remove_secret(cages: Cages, cage: str, name: str) -> list[str]:
    podman_secrets.check_name(name)
    if not is_kube(cages.store, cage):
        return podman_secrets.remove_secret(cages, cage, name)
    from agentcage.cage.kube import kube_secrets

    return kube_secrets.remove_secret(cages.store, cage, name)


def secret_names(cages: Cages, cage: str) -> list[str]:
    if not is_kube(cages.store, cage):
        return cages.secret_names(cage)
    from agentcage.cage.kube import kube_secrets

    return kube_secrets.secret_names(cages.store, cage)
