"""A fake Kubernetes API server (tests/support/fake_kube.py) per test, a kubeconfig for it,
and hand-written manifests shaped like a cage's: proxy, DNS and agent Deployments."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trustme

from agentcage.cage.kube.cluster import KINDS, ClusterApi, secret_values
from agentcage.cage.kube.object_names import KubeNames
from agentcage.config.schema import CageConfig
from tests.support.fake_kube import FakeKubeServer
from tests.support.plugin import fake_ca  # noqa: F401

NAMES = KubeNames("demo")


@pytest.fixture
def kube(fake_ca: trustme.CA) -> Iterator[FakeKubeServer]:  # noqa: F811
    server = FakeKubeServer(fake_ca)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def kubeconfig(kube: FakeKubeServer, tmp_path: Path) -> Path:
    return kube.kubeconfig(tmp_path / "kubeconfig")


def _meta(name: str, namespace: str, role: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": NAMES.labels(role)}


def _deployment(namespace: str, role: str, volumes: list[dict[str, Any]]) -> dict[str, Any]:
    labels = NAMES.labels(role)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(NAMES.workload(role), namespace, role),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": role, "image": f"example/{role}:1"}],
                    "volumes": volumes,
                },
            },
        },
    }


def _secret(name: str, namespace: str, values: Mapping[str, str]) -> dict[str, Any]:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, namespace), "data": data}


def hand_manifests(
    namespace: str = "cage-demo",
    domains: str = "example.com\n",
    values: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """What the renderer makes for cage `demo`, in outline; deliberately out of order."""
    values = values or {}
    config = {"name": "config", "configMap": {"name": NAMES.config}}
    fingerprint = hashlib.sha256(json.dumps(sorted(values.items())).encode()).hexdigest()
    return [
        _deployment(namespace, "agent", [{"name": "ca", "configMap": {"name": NAMES.ca_cert}}]),
        _deployment(
            namespace, "proxy", [config, {"name": "s", "secret": {"secretName": NAMES.secrets}}]
        ),
        _deployment(
            namespace, "dns", [config, {"name": "f", "secret": {"secretName": NAMES.fingerprints}}]
        ),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(NAMES.policy("agent"), namespace),
            "spec": {"podSelector": {"matchLabels": NAMES.labels("agent")}},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(NAMES.workload("proxy"), namespace, "proxy"),
            "spec": {"selector": NAMES.labels("proxy"), "ports": [{"port": 8080}]},
        },
        _secret(NAMES.secrets, namespace, values),
        _secret(NAMES.fingerprints, namespace, {"fingerprints.json": fingerprint}),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(NAMES.config, namespace),
            "data": {"domains": domains},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(NAMES.ca_cert, namespace),
            "data": {"ca.pem": "-----BEGIN CERTIFICATE-----\n"},
        },
    ]


def hand_render(
    api: ClusterApi, config: CageConfig, namespace: str, values: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """A `KubeCages` render: the domain list from the config, values as given or held."""
    if values is None:
        values = secret_values(api.get(KINDS["Secret"], namespace, NAMES.secrets))
    domains = "".join(f"{d}\n" for d in config.domains.entries)
    return hand_manifests(namespace, domains, values)
