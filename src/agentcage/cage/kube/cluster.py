"""Talking to one Kubernetes API server: the seam, the kinds, and the errors.

`ClusterApi` is all the rest of cage/kube asks of a cluster: server-side apply, get, list by
label, delete, and a merge patch, for the handful of kinds a cage is made of. client_api.py
goes through the official `kubernetes` client, which reads the kubeconfig (contexts,
certificates, tokens, exec plugins) exactly as kubectl does; kubectl_api.py shells out to
kubectl instead. Every failure becomes a `KubeError` naming the context and server asked.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agentcage.errors import (
    KubeAuthError,
    KubeConflictError,
    KubeError,
    KubeNotFoundError,
)

Manifest = dict[str, Any]

# Server-side apply records which writer owns each field: everything agentcage renders is
# applied under this manager, so a field it stops sending is removed; the reload
# annotation (config_roll.py) has a manager of its own and survives a re-apply.
FIELD_MANAGER = "agentcage"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced:
            base += f"/namespaces/{namespace}"
        return f"{base}/{self.plural}" + (f"/{name}" if name else "")


KINDS = {
    k.kind: k
    for k in (
        Kind("v1", "Namespace", "namespaces", namespaced=False),
        Kind("v1", "ConfigMap", "configmaps"),
        Kind("v1", "Secret", "secrets"),
        Kind("v1", "ServiceAccount", "serviceaccounts"),
        Kind("v1", "Service", "services"),
        Kind("v1", "Pod", "pods"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("batch/v1", "Job", "jobs"),
    )
}


def kind_of(obj: Mapping[str, Any]) -> Kind:
    kind = KINDS.get(str(obj.get("kind")))
    if kind is None or kind.api_version != obj.get("apiVersion"):
        raise KubeError(
            f"agentcage does not manage {obj.get('apiVersion')}/{obj.get('kind')} objects",
            hint=f"it manages {', '.join(sorted(KINDS))}",
        )
    return kind


def describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def secret_values(secret: Mapping[str, Any] | None) -> dict[str, str]:
    """A Secret's `data`, decoded; {} for no Secret."""
    if secret is None:
        return {}
    try:
        return {
            key: base64.b64decode(value).decode()
            for key, value in (secret.get("data") or {}).items()
        }
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise KubeError(
            f"{describe(secret)} holds a value that is not base64 text: {exc}",
            hint="it was changed by hand; `agentcage secret set` writes it again",
        ) from exc


@dataclass(frozen=True)
class ClusterTarget:
    """Which cluster: a kubeconfig context, and optionally kubectl to reach it through."""

    context: str | None = None  # None: the kubeconfig's current context
    kubeconfig: str | None = None  # None: $KUBECONFIG, else ~/.kube/config
    kubectl: str | None = None  # a kubectl binary to shell out to instead of the client

    def kubeconfig_path(self) -> str:
        return self.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube/config")


class ClusterApi(Protocol):
    context: str  # the resolved context name, recorded so later commands ask the same cluster
    server: str

    def apply(self, obj: Manifest, *, force: bool = False) -> Manifest: ...

    def get(self, kind: Kind, namespace: str | None, name: str) -> Manifest | None: ...

    def list_labelled(self, kind: Kind, namespace: str | None, selector: str) -> list[Manifest]: ...

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool: ...

    def merge_patch(
        self, kind: Kind, namespace: str | None, name: str, patch: Manifest, manager: str
    ) -> Manifest: ...


def connect(target: ClusterTarget) -> ClusterApi:
    if target.kubectl:
        from agentcage.cage.kube.kubectl_api import KubectlApi

        return KubectlApi(target)
    from agentcage.cage.kube.client_api import ClientApi

    return ClientApi(target)


def http_error(status: int, reason: str, what: str, context: str, server: str) -> KubeError:
    """The typed error for an API status, with what to check for it."""
    where = f"(context {context!r}, server {server})"
    text = f"{what}: {reason} {where}"
    if status == 401:
        return KubeAuthError(
            f"{what}: the API server did not accept the credentials {where}",
            hint=f"refresh the login of context {context!r} (`kubectl --context {context} "
            "auth whoami`)",
        )
    if status == 403:
        return KubeAuthError(
            f"{what}: forbidden {where}: {reason}",
            hint=f"the user of context {context!r} lacks the RBAC right; "
            f"`kubectl --context {context} auth can-i --list` shows what it may do",
        )
    if status == 404:
        return KubeNotFoundError(
            text, hint="check the namespace exists (`kubectl get namespace`) and the context"
        )
    if status == 409:
        return KubeConflictError(
            f"{what}: conflict {where}: {reason}",
            hint="another writer changed or owns these fields; look at the object with "
            "`kubectl get -o yaml`, then re-run with --force-conflicts to take them over",
        )
    return KubeError(text)
