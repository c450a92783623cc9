"""`secret set|rm|list` on a Kubernetes cage.

The value goes into one key of the cage's secrets Secret, which only the proxy's pod
mounts, and never onto this machine's disk; the DNS pod's fingerprints Secret is made again
with it. The Deployments mounting what changed then roll (config_roll.py): the proxy and
the resolver, not the agent.
"""

from __future__ import annotations

from agentcage.cage.kube.kube_cages import KubeCages
from agentcage.cage.state import StateStore


def set_secret(store: StateStore, cage: str, name: str, value: str) -> list[str]:
    """Store the value; returns the Deployments rolled to pick it up."""
    return KubeCages(store).change_secret(cage, name, value)


def remove_secret(store: StateStore, cage: str, name: str) -> list[str]:
    return KubeCages(store).change_secret(cage, name, None)


def secret_names(store: StateStore, cage: str) -> list[str]:
    return KubeCages(store).secret_keys(cage)
