"""`kube render --kustomize DIR`: the manifests as a kustomize base.

A team that templates keeps this directory as a base and layers its own overlays (image
tags, namespaces, resource limits) on top; re-rendering rewrites only these two files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentcage.atomicfile import write_atomic
from agentcage.cage.kube.manifest_yaml import to_yaml

KUSTOMIZATION = "kustomization.yaml"


def kustomize_files(cage: str, namespace: str, manifests: list[dict[str, Any]]) -> dict[str, str]:
    """File name -> content of the base: the objects in one file, and its kustomization."""
    resources = f"agentcage-{cage}.yaml"
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [resources],
    }
    return {resources: to_yaml(manifests), KUSTOMIZATION: to_yaml([kustomization])}


def write_kustomize(directory: Path, files: dict[str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        write_atomic(directory / name, text, 0o644)
        written.append(directory / name)
    return written
