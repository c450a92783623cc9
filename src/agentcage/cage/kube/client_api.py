"""The cluster seam through the official `kubernetes` Python client.

The client reads the kubeconfig as kubectl does (contexts, certificates, tokens, exec
plugins); requests go through its `ApiClient` as plain REST calls on the paths of
`cluster.KINDS`, so one code path serves every kind and the bodies stay plain dicts.
"""

from __future__ import annotations

import json

import urllib3
from kubernetes import config as kubeconfig
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from agentcage.cage.kube.cluster import (
    APPLY_PATCH,
    FIELD_MANAGER,
    MERGE_PATCH,
    ClusterTarget,
    Kind,
    Manifest,
    describe,
    http_error,
    kind_of,
)
from agentcage.errors import KubeError, KubeUnreachableError

_TIMEOUT = (10, 60)  # connect, read (seconds)


class ClientApi:
    """Through the official client: the kubeconfig, context and credentials are its own."""

    def __init__(self, target: ClusterTarget) -> None:
        path = target.kubeconfig_path()
        configuration = Configuration()
        try:
            _, current = kubeconfig.list_kube_config_contexts(path)  # type: ignore[no-untyped-call]
            self.context = target.context or str(current["name"])
            kubeconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=self.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, OSError, KeyError, TypeError, ValueError) as exc:
            shown = target.context or "the current context"
            raise KubeError(
                f"kubeconfig {path}: cannot use {shown}: {exc}",
                hint="`kubectl config get-contexts` lists the contexts; --context picks one, "
                "$KUBECONFIG the file",
            ) from exc
        # One try: an unreachable server should say so in seconds, not after backoffs.
        configuration.retries = 1
        self.server = str(configuration.host)
        self._api = ApiClient(configuration)

    def apply(self, obj: Manifest, *, force: bool = False) -> Manifest:
        kind = kind_of(obj)
        meta = obj["metadata"]
        query = [("fieldManager", FIELD_MANAGER)] + ([("force", "true")] if force else [])
        path = kind.path(meta.get("namespace"), meta["name"])
        status, data = self._request("PATCH", path, query, obj, APPLY_PATCH)
        return self._result(status, data, f"apply {describe(obj)}")

    def get(self, kind: Kind, namespace: str | None, name: str) -> Manifest | None:
        status, data = self._request("GET", kind.path(namespace, name))
        if status == 404:
            return None
        return self._result(status, data, f"get {kind.kind} {name}")

    def list_labelled(self, kind: Kind, namespace: str | None, selector: str) -> list[Manifest]:
        status, data = self._request("GET", kind.path(namespace), [("labelSelector", selector)])
        listed = self._result(status, data, f"list {kind.plural} in {namespace}")
        items: list[Manifest] = listed.get("items") or []
        for item in items:  # a list's items carry neither; the callers want whole objects
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        # Foreground: the Deployment's pods go before it is reported gone.
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
        status, data = self._request("DELETE", kind.path(namespace, name), body=body)
        if status == 404:
            return False
        self._result(status, data, f"delete {kind.kind} {name}")
        return True

    def merge_patch(
        self, kind: Kind, namespace: str | None, name: str, patch: Manifest, manager: str
    ) -> Manifest:
        path = kind.path(namespace, name)
        status, data = self._request("PATCH", path, [("fieldManager", manager)], patch, MERGE_PATCH)
        return self._result(status, data, f"patch {kind.kind} {name}")

    def _result(self, status: int, data: Manifest, what: str) -> Manifest:
        if 200 <= status < 300:
            return data
        reason = str(data.get("message") or data.get("reason") or f"HTTP {status}")
        raise http_error(status, reason, what, self.context, self.server)

    def _request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Manifest | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Manifest]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            request = self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*request[:4], _request_timeout=_TIMEOUT)
            raw = response.read()  # type: ignore[no-untyped-call]
        except (urllib3.exceptions.HTTPError, OSError, ApiException) as exc:
            raise KubeUnreachableError(
                f"cannot reach the API server {self.server} of context {self.context!r}: "
                f"{_cause(exc)}",
                hint=f"check the cluster runs and this machine reaches it "
                f"(`kubectl --context {self.context} cluster-info`)",
            ) from exc
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"message": raw[:200].decode(errors="replace")}
        return response.status, data if isinstance(data, dict) else {}


def _cause(exc: BaseException) -> str:
    """The innermost reason urllib3 wraps (refused, timed out, certificate)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return _cause(reason)
    return str(reason or exc)
