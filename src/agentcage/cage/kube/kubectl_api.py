"""The same cluster seam through a kubectl binary, for users whose access goes through it
(a wrapper, an auth plugin only kubectl knows, an audited kubectl).

Each call is one `kubectl` process with an argv list (never a shell) and `--context`
always given, so the cluster asked is the recorded one. JSON goes in on stdin and comes
back with `-o json`; kubectl's "Error from server (Reason)" lines map to the same typed
errors as the client's HTTP statuses.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from agentcage.cage.kube.cluster import (
    FIELD_MANAGER,
    ClusterTarget,
    Kind,
    Manifest,
    describe,
    http_error,
    kind_of,
)
from agentcage.errors import KubeError, KubeUnreachableError

_REASONS = {
    "(Unauthorized)": 401,
    "(Forbidden)": 403,
    "(NotFound)": 404,
    "(Conflict)": 409,
    "(AlreadyExists)": 409,
}
_UNREACHABLE = ("Unable to connect to the server", "connection refused", "no such host")
_TIMEOUT_S = 120


def resource(kind: Kind) -> str:
    """kubectl's fully qualified resource name: `deployments.apps`, `configmaps`."""
    group = kind.api_version.rpartition("/")[0]
    return f"{kind.plural}.{group}" if group else kind.plural


class KubectlApi:
    def __init__(self, target: ClusterTarget) -> None:
        assert target.kubectl is not None
        self._kubectl = target.kubectl
        self._kubeconfig = target.kubeconfig
        self.context = "?"
        self.server = "?"
        if target.context:
            self.context = target.context
        else:
            self.context = self._run(["config", "current-context"], "read the kubeconfig").strip()
        self.server = self._run(
            ["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"],
            "read the kubeconfig",
        ).strip()

    def apply(self, obj: Manifest, *, force: bool = False) -> Manifest:
        kind_of(obj)
        argv = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-o", "json"]
        argv += ["--force-conflicts"] if force else []
        return self._json([*argv, "-f", "-"], f"apply {describe(obj)}", stdin=json.dumps(obj))

    def get(self, kind: Kind, namespace: str | None, name: str) -> Manifest | None:
        argv = ["get", resource(kind), name, "--ignore-not-found", "-o", "json"]
        out = self._run(argv + _ns(kind, namespace), f"get {kind.kind} {name}")
        return json.loads(out) if out.strip() else None

    def list_labelled(self, kind: Kind, namespace: str | None, selector: str) -> list[Manifest]:
        argv = ["get", resource(kind), "-l", selector, "-o", "json", *_ns(kind, namespace)]
        items: list[Manifest] = self._json(argv, f"list {kind.plural}").get("items") or []
        return items

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        argv = ["delete", resource(kind), name, "--ignore-not-found", "--cascade=foreground"]
        out = self._run([*argv, "-o", "name", *_ns(kind, namespace)], f"delete {kind.kind} {name}")
        return bool(out.strip())

    def merge_patch(
        self, kind: Kind, namespace: str | None, name: str, patch: Manifest, manager: str
    ) -> Manifest:
        argv = ["patch", resource(kind), name, "--type", "merge", "-p", json.dumps(patch)]
        argv += [f"--field-manager={manager}", "-o", "json", *_ns(kind, namespace)]
        return self._json(argv, f"patch {kind.kind} {name}")

    def _json(self, argv: list[str], what: str, stdin: str | None = None) -> Manifest:
        data: Any = json.loads(self._run(argv, what, stdin))
        return data if isinstance(data, dict) else {}

    def _run(self, argv: list[str], what: str, stdin: str | None = None) -> str:
        base = [self._kubectl]
        base += [f"--kubeconfig={self._kubeconfig}"] if self._kubeconfig else []
        base += [f"--context={self.context}"] if self.context != "?" else []
        try:
            done = subprocess.run(
                [*base, *argv],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KubeError(
                f"{what}: cannot run {self._kubectl}: {exc}",
                hint="--kubectl names the kubectl binary; leave it out to use the built-in client",
            ) from exc
        if done.returncode == 0:
            return done.stdout
        err = done.stderr.strip()
        if any(text in err for text in _UNREACHABLE):
            raise KubeUnreachableError(
                f"cannot reach the API server {self.server} of context {self.context!r}: {err}",
                hint=f"check the cluster runs and this machine reaches it "
                f"(`kubectl --context {self.context} cluster-info`)",
            )
        status = next((code for reason, code in _REASONS.items() if reason in err), 0)
        if status:
            raise http_error(status, err, what, self.context, self.server)
        raise KubeError(f"{what}: kubectl failed (context {self.context!r}): {err}")


def _ns(kind: Kind, namespace: str | None) -> list[str]:
    return ["-n", namespace] if kind.namespaced and namespace else []
