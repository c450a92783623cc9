"""A fake Kubernetes API server (tests/support/fake_kube.py) per test, a kubeconfig for it,
and hand-written manifests shaped like a cage's: proxy, DNS and agent Deployments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.support.fake_kube import FakeKubeServer
from tests.support.plugin import fake_ca  # noqa: F401

CAGE = "agentcage.io/cage"
COMPONENT = "app.kubernetes.io/component"


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


def _meta(name: str, namespace: str, cage: str, component: str | None = None) -> dict[str, Any]:
    labels = {CAGE: cage} | ({COMPONENT: component} if component else {})
    return {"name": name, "namespace": namespace, "labels": labels}


def _deployment(
    cage: str, namespace: str, component: str, volumes: list[dict[str, Any]]
) -> dict[str, Any]:
    name = f"{cage}-{component}"
    labels = {CAGE: cage, COMPONENT: component}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, cage, component),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": component, "image": f"example/{component}:1"}],
                    "volumes": volumes,
                },
            },
        },
    }


def hand_manifests(cage: str = "demo", namespace: str = "cage-demo") -> list[dict[str, Any]]:
    """What the renderer makes, in outline; deliberately out of dependency order."""
    policy = {"name": "policy", "configMap": {"name": f"{cage}-policy"}}
    return [
        _deployment(
            cage, namespace, "agent", [{"name": "ca", "configMap": {"name": f"{cage}-ca"}}]
        ),
        _deployment(
            cage,
            namespace,
            "proxy",
            [policy, {"name": "secrets", "secret": {"secretName": f"{cage}-secrets"}}],
        ),
        _deployment(cage, namespace, "dns", [policy]),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(f"{cage}-agent", namespace, cage),
            "spec": {
                "podSelector": {"matchLabels": {COMPONENT: "agent"}},
                "policyTypes": ["Egress"],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(f"{cage}-proxy", namespace, cage),
            "spec": {"selector": {COMPONENT: "proxy"}, "ports": [{"port": 8080}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(f"{cage}-secrets", namespace, cage),
            "type": "Opaque",
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(f"{cage}-policy", namespace, cage),
            "data": {"domains": "example.com\n"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(f"{cage}-ca", namespace, cage),
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"},
        },
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {CAGE: cage}},
        },
    ]
