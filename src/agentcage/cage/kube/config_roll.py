"""Rolling restarts for live changes: a Deployment restarts when something it mounts changed.

The annotation `agentcage.io/config-hash` on the pod template of each Deployment whose pods
read a changed ConfigMap or Secret (as a volume, projected, `env` or `envFrom`) is set to a
hash of everything that Deployment reads. Only those templates change, so only those
Deployments roll, one new pod ready before the old one goes; the agent's pod reads neither
the domain list nor a secret, so it keeps running. The annotation is written under its own
field manager, so a later `kube apply` (agentcage's manager) leaves it in place.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agentcage.cage.kube import rollout
from agentcage.cage.kube.cluster import KINDS, ClusterApi, Manifest

HASH_ANNOTATION = "agentcage.io/config-hash"
RELOAD_MANAGER = "agentcage-reload"


def roll(
    api: ClusterApi,
    namespace: str,
    label_selector: str,
    changed: set[tuple[str, str]],
    timeout_s: float,
) -> list[str]:
    """Restart the Deployments whose pods mount a changed object; wait for them."""
    rolled = []
    for deployment in api.list_labelled(KINDS["Deployment"], namespace, label_selector):
        mounted = mounts(deployment)
        if not mounted & changed:
            continue
        digest = hashlib.sha256()
        for kind, ref in sorted(mounted):
            digest.update(
                json.dumps(
                    [kind, ref, payload(api.get(KINDS[kind], namespace, ref))], sort_keys=True
                ).encode()
            )
        name = deployment["metadata"]["name"]
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {HASH_ANNOTATION: digest.hexdigest()[:16]}}
                }
            }
        }
        api.merge_patch(KINDS["Deployment"], namespace, name, patch, RELOAD_MANAGER)
        rolled.append(name)
    rollout.wait_ready(
        api, namespace, [("Deployment", n) for n in rolled], label_selector, timeout_s
    )
    return rolled


def mounts(deployment: Manifest) -> set[tuple[str, str]]:
    """The ConfigMaps and Secrets a Deployment's pods read: volumes, env and envFrom."""
    spec = deployment["spec"]["template"].get("spec") or {}
    found: set[tuple[str, str]] = set()
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            found.add(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume:
            found.add(("Secret", volume["secret"]["secretName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                found.add(("ConfigMap", source["configMap"]["name"]))
            if "secret" in source:
                found.add(("Secret", source["secret"]["name"]))
    for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        for env_from in container.get("envFrom") or []:
            if "configMapRef" in env_from:
                found.add(("ConfigMap", env_from["configMapRef"]["name"]))
            if "secretRef" in env_from:
                found.add(("Secret", env_from["secretRef"]["name"]))
        for env in container.get("env") or []:
            ref = env.get("valueFrom") or {}
            if "configMapKeyRef" in ref:
                found.add(("ConfigMap", ref["configMapKeyRef"]["name"]))
            if "secretKeyRef" in ref:
                found.add(("Secret", ref["secretKeyRef"]["name"]))
    return found


def payload(obj: Manifest | None) -> Any:
    if obj is None:
        return None
    return {k: obj.get(k) for k in ("data", "binaryData", "stringData")}
