"""Change a cage's domain list and apply it live: the agent keeps running."""

from __future__ import annotations

import json

from agentcage.cage.kube.kube_record import is_kube
from agentcage.cage.lifecycle import Cages
from agentcage.cage.state import config_json
from agentcage.config.context import LoadContext
from agentcage.config.domain_names import normalize_host_entry
from agentcage.config.schema import CageConfig
from agentcage.errors import ConfigError, KubeRolloutError


def entries(cages: Cages, name: str) -> tuple[str, list[str]]:
    config = cages.store.load_config(name)
    return config.domains.mode, list(config.domains.entries)


def change(cages: Cages, name: str, entry: str, *, add: bool) -> tuple[CageConfig, bool]:
    """Add or remove `entry`; returns the new config and whether anything changed.

    On Podman the state is updated first, then a running cage's proxy and DNS reload it;
    on Kubernetes the cage's ConfigMap is updated and its proxy and DNS Deployments roll.
    """
    try:
        normalized = normalize_host_entry(entry)
    except ValueError as exc:
        raise ConfigError(f"domain {entry!r}: {exc}") from exc
    config = cages.store.load_config(name)
    current = list(config.domains.entries)
    if add == (normalized in current):
        return config, False
    updated = [*current, normalized] if add else [e for e in current if e != normalized]
    data = json.loads(config_json(config))
    data["domains"]["list"] = updated
    ctx = LoadContext(base_dir=cages.store.path(name), environ={}, check_paths=False)
    new = CageConfig.model_validate(data, context=ctx, strict=False)
    if is_kube(cages.store, name):
        _push_to_cluster(cages, new)
        return new, True
    # The stored source becomes the normalized config: it is what the cage now runs.
    cages.store.save_config(new, config_json(new))
    if cages.store.read_json(name, "images.json") is not None:
        cages.reload(name)
    return new, True


def _push_to_cluster(cages: Cages, new: CageConfig) -> None:
    """The cluster first: when it cannot be reached the state keeps the old list, and the
    same command can be run again. Once the ConfigMap is written the list is in force
    there, so a proxy or resolver slow to roll still leaves the new list recorded."""
    from agentcage.cage.kube.kube_cages import KubeCages

    try:
        KubeCages(cages.store).refresh_domains(new)
    except KubeRolloutError:
        cages.store.save_config(new, config_json(new))
        raise
    cages.store.save_config(new, config_json(new))
