"""`--kubectl`: the argv each request becomes, and kubectl's errors as typed errors.

kubectl itself is not run here (no cluster and no kubectl on CI machines): a stub records
its arguments and answers as kubectl does, so this checks agentcage's half only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agentcage.cage.kube.cluster import KINDS, ClusterTarget
from agentcage.cage.kube.kubectl_api import KubectlApi, resource
from agentcage.errors import KubeAuthError, KubeConflictError, KubeUnreachableError

STUB = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
data = sys.stdin.read()
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "stdin": data}}) + "\\n")
words = [a for a in args if not a.startswith("--kubeconfig=") and not a.startswith("--context=")]
error = os.environ.get("STUB_ERROR")
if words[:2] == ["config", "current-context"]:
    print("picked")
elif words[:2] == ["config", "view"]:
    print("https://cluster.example:6443")
elif error:
    sys.stderr.write(error + "\\n")
    sys.exit(1)
elif words[0] == "apply":
    print(data)
elif words[0] == "get" and "missing" in words:
    pass
elif words[0] == "get" and "-l" in words:
    print(json.dumps({{"items": [{{"metadata": {{"name": "x"}}}}]}}))
elif words[0] == "delete":
    print("deployment.apps/web")
else:
    print(json.dumps({{"metadata": {{"name": words[2]}}}}))
"""


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stub = tmp_path / "kubectl"
    stub.write_text(STUB)
    stub.chmod(0o755)
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "log"))
    return stub


def _calls(kubectl: Path) -> list[dict[str, object]]:
    lines = (kubectl.parent / "log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_resources_are_fully_qualified() -> None:
    assert resource(KINDS["Deployment"]) == "deployments.apps"
    assert resource(KINDS["NetworkPolicy"]) == "networkpolicies.networking.k8s.io"
    assert resource(KINDS["ConfigMap"]) == "configmaps"


def test_each_request_names_kubeconfig_and_context(kubectl: Path) -> None:
    api = KubectlApi(ClusterTarget(kubeconfig="/k", kubectl=str(kubectl)))
    assert (api.context, api.server) == ("picked", "https://cluster.example:6443")
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    assert api.apply(obj, force=True) == obj
    assert api.get(KINDS["Secret"], "ns", "missing") is None
    assert api.list_labelled(KINDS["Pod"], "ns", "a=b") == [{"metadata": {"name": "x"}}]
    assert api.delete(KINDS["Deployment"], "ns", "web") is True
    api.merge_patch(KINDS["Deployment"], "ns", "web", {"spec": {}}, "agentcage-reload")
    api.get(KINDS["Namespace"], None, "ns")
    calls = _calls(kubectl)
    assert calls[0]["argv"] == ["--kubeconfig=/k", "config", "current-context"]
    prefix = ["--kubeconfig=/k", "--context=picked"]
    assert [c["argv"] for c in calls[2:]] == [
        [*prefix, "apply", "--server-side", "--field-manager=agentcage", "-o", "json",
         "--force-conflicts", "-f", "-"],
        [*prefix, "get", "secrets", "missing", "--ignore-not-found", "-o", "json", "-n", "ns"],
        [*prefix, "get", "pods", "-l", "a=b", "-o", "json", "-n", "ns"],
        [*prefix, "delete", "deployments.apps", "web", "--ignore-not-found",
         "--cascade=foreground", "-o", "name", "-n", "ns"],
        [*prefix, "patch", "deployments.apps", "web", "--type", "merge", "-p", '{"spec": {}}',
         "--field-manager=agentcage-reload", "-o", "json", "-n", "ns"],
        [*prefix, "get", "namespaces", "ns", "--ignore-not-found", "-o", "json"],
    ]  # fmt: skip
    assert json.loads(str(calls[2]["stdin"])) == obj


@pytest.mark.parametrize(
    ("stderr", "error", "text"),
    [
        (
            'Error from server (Forbidden): secrets "s" is forbidden: User "u" cannot get',
            KubeAuthError,
            "get Secret s: forbidden (context 'ctx', server https://cluster.example:6443)",
        ),
        (
            "Error from server (Conflict): Apply failed with 1 conflict",
            KubeConflictError,
            "get Secret s: conflict (context 'ctx'",
        ),
        (
            "Unable to connect to the server: dial tcp 10.0.0.1:6443: connect: connection refused",
            KubeUnreachableError,
            "cannot reach the API server https://cluster.example:6443 of context 'ctx'",
        ),
    ],
)
def test_kubectl_errors_become_typed_errors(
    kubectl: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, error: type, text: str
) -> None:
    api = KubectlApi(ClusterTarget(context="ctx", kubectl=str(kubectl)))
    monkeypatch.setenv("STUB_ERROR", stderr)
    with pytest.raises(error) as caught:
        api.get(KINDS["Secret"], "ns", "s")
    assert text in caught.value.message
