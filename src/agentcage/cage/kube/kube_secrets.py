"""`secret set|rm|list` on a Kubernetes cage.

The value goes into one key of the cage's secrets Secret, which only the proxy's pod
mounts, and never onto this machine's disk. The Deployments mounting a changed Secret then
roll (kube_cages.roll): the proxy, not the agent.
"""

from __future__ import annotations

from agentcage.cage.kube.kube_cages import DEFAULT_TIMEOUT_S, KubeCages
from agentcage.cage.kube.names import KubeNames
from agentcage.cage.state import StateStore


def set_secret(store: StateStore, cage: str, name: str, value: str) -> list[str]:
    """Store the value; returns the Deployments rolled to pick it up."""
    return KubeCages(store).set_secret_value(
        cage, KubeNames(cage).secrets, name, value, DEFAULT_TIMEOUT_S
    )


def remove_secret(store: StateStore, cage: str, name: str) -> list[str]:
    return KubeCages(store).set_secret_value(
        cage, KubeNames(cage).secrets, name, None, DEFAULT_TIMEOUT_S
    )


def secret_names(store: StateStore, cage: str) -> list[str]:
    return KubeCages(store).secret_keys(cage, KubeNames(cage).secrets)
