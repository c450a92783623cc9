"""`agentcage kube apply|status|delete`, `domain add` and `secret set` on a Kubernetes cage,
run as the real CLI against the fake API server, with the real renderer's objects."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentcage.cage.kube.object_names import KubeNames
from tests.support.fake_kube import FakeKubeServer
from tests.unit.cage.kube_configs import KUBE_CONFIG

AGENTCAGE = str(Path(sys.executable).parent / "agentcage")
NS = "team-a"
NAMES = KubeNames("demo")
# The renderer's test cage (kubernetes: is its last section), in its own namespace.
CONFIG = KUBE_CONFIG.replace("AGENT_KIND", "Deployment") + f"  namespace: {NS}\n"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def agentcage(tmp_path: Path, kubeconfig: Path) -> Run:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "KUBECONFIG": str(kubeconfig),
    }

    def run(*words: str, stdin: str = "", code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [AGENTCAGE, *words], env=env, input=stdin, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == code, done.stderr
        return done

    return run


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(CONFIG)
    return path


def _deployment(kube: FakeKubeServer, role: str) -> dict[str, Any]:
    obj = kube.cluster.get("deployments", NS, NAMES.workload(role))
    assert obj is not None
    return obj


def _generations(kube: FakeKubeServer) -> dict[str, int]:
    return {r: _deployment(kube, r)["metadata"]["generation"] for r in ("proxy", "dns", "agent")}


def _pods(kube: FakeKubeServer) -> list[str]:
    return sorted(p["metadata"]["name"] for p in kube.cluster.all("pods"))


def test_a_cage_on_kubernetes_from_apply_to_delete(
    kube: FakeKubeServer, agentcage: Run, config_file: Path
) -> None:
    done = agentcage(
        "kube", "apply", "-c", str(config_file), "--create-namespace", "--timeout", "30"
    )
    assert done.stdout == f"cage demo applied and ready in namespace {NS} (context fake)\n"
    kinds = sorted({o["kind"] for o in kube.cluster.all() if "kind" in o})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Namespace",
        "NetworkPolicy",
        "Pod",
        "Secret",
        "Service",
    ]

    status = json.loads(agentcage("kube", "status", "demo", "--json").stdout)
    assert status["ready"] is True and (status["namespace"], status["context"]) == (NS, "fake")
    assert sorted(w["role"] for w in status["workloads"]) == ["agent", "dns", "proxy"]
    assert all(w["ready"] == w["desired"] == 1 for w in status["workloads"])
    assert "ready; namespace team-a, context fake" in agentcage("kube", "status", "demo").stdout

    # A new domain: the config ConfigMap changes, proxy and DNS roll, the agent does not.
    agent_pod = [p for p in _pods(kube) if NAMES.workload("agent") in p]
    done = agentcage("domain", "add", "demo", "example.org")
    assert done.stdout == "example.org added to the allowlist of demo\n"
    config_map = kube.cluster.get("configmaps", NS, NAMES.config)
    assert config_map is not None and "example.org" in json.dumps(config_map["data"])
    assert _generations(kube) == {"proxy": 2, "dns": 2, "agent": 1}
    assert "annotations" not in _deployment(kube, "agent")["spec"]["template"]["metadata"]
    assert [p for p in _pods(kube) if NAMES.workload("agent") in p] == agent_pod

    # A secret: only in the proxy's Secret; proxy (values) and DNS (fingerprints) roll.
    proxy_hash = dict(_deployment(kube, "proxy")["spec"]["template"]["metadata"]["annotations"])
    done = agentcage("secret", "set", "demo", "ANTHROPIC_API_KEY", stdin="sk-ant-real-1234\n")
    assert "secret ANTHROPIC_API_KEY set for demo" in done.stdout
    secret = kube.cluster.get("secrets", NS, NAMES.secrets)
    assert secret is not None
    assert base64.b64decode(secret["data"]["ANTHROPIC_API_KEY"]) == b"sk-ant-real-1234"
    everything = json.dumps(kube.cluster.all())
    assert "sk-ant-real-1234" not in everything
    assert everything.count(base64.b64encode(b"sk-ant-real-1234").decode()) == 1
    assert _generations(kube) == {"proxy": 3, "dns": 3, "agent": 1}
    assert _deployment(kube, "proxy")["spec"]["template"]["metadata"]["annotations"] != proxy_hash
    assert [p for p in _pods(kube) if NAMES.workload("agent") in p] == agent_pod
    listed = json.loads(agentcage("secret", "list", "demo", "--json").stdout)
    assert listed == [{"name": "ANTHROPIC_API_KEY", "set": True, "used": True}]

    # A re-apply keeps the CA, the value and the roll annotations: nothing restarts.
    ca = kube.cluster.get("secrets", NS, NAMES.ca)
    agentcage("kube", "apply", "-c", str(config_file), "--timeout", "30")
    assert _generations(kube) == {"proxy": 3, "dns": 3, "agent": 1}
    assert kube.cluster.get("secrets", NS, NAMES.ca) == ca
    assert json.loads(agentcage("secret", "list", "demo", "--json").stdout)[0]["set"] is True

    done = agentcage("kube", "delete", "demo")
    assert done.stdout.startswith("cage demo deleted (")
    assert kube.cluster.all() == []  # its namespace too: --create-namespace made it
    done = agentcage("kube", "status", "demo", code=1)
    assert "no Kubernetes cage named 'demo'" in done.stderr
    agentcage("kube", "delete", "demo", "--missing-ok")


def test_cluster_errors_are_named(
    kube: FakeKubeServer, agentcage: Run, config_file: Path, tmp_path: Path
) -> None:
    done = agentcage("kube", "apply", "-c", str(config_file), code=3)
    assert f"error: namespace '{NS}' does not exist (context 'fake', server {kube.url})" in (
        done.stderr
    )
    assert "--create-namespace" in done.stderr
    kube.cluster.add_namespace(NS)
    kube.cluster.forbidden.add(("PATCH", "secrets"))
    done = agentcage("kube", "apply", "-c", str(config_file), code=3)
    assert "forbidden (context 'fake'" in done.stderr and "auth can-i" in done.stderr
    # The half-done apply was recorded against context fake: delete cleans it up.
    kube.cluster.forbidden.clear()
    agentcage("kube", "delete", "demo")
    assert [o["metadata"]["name"] for o in kube.cluster.all()] == [NS]
    wrong = kube.kubeconfig(tmp_path / "other", token="expired", context="ci")
    done = agentcage("kube", "apply", "-c", str(config_file), "--kubeconfig", str(wrong), code=3)
    assert "did not accept the credentials (context 'ci'" in done.stderr
    done = agentcage("kube", "apply", "-c", str(config_file), "--context", "prod", code=3)
    assert "cannot use prod" in done.stderr and "get-contexts" in done.stderr


def test_a_proxy_that_does_not_roll_is_named_and_the_list_kept(
    kube: FakeKubeServer, agentcage: Run, config_file: Path
) -> None:
    kube.cluster.add_namespace(NS)
    agentcage("kube", "apply", "-c", str(config_file), "--timeout", "30")
    proxy = NAMES.workload("proxy")
    kube.cluster.stuck.add(proxy)
    kube.cluster.past_deadline.add(proxy)
    done = agentcage("domain", "add", "demo", "example.org", code=3)
    assert f"error: Deployment {NS}/{proxy} failed: ProgressDeadlineExceeded" in done.stderr
    assert "ImagePullBackOff" in done.stderr
    # The ConfigMap holds the new list, and so does the state.
    assert "example.org" in agentcage("domain", "list", "demo").stdout


def test_the_agent_as_job_or_pod_and_what_a_new_config_no_longer_makes_is_pruned(
    kube: FakeKubeServer, agentcage: Run, config_file: Path
) -> None:
    kube.cluster.add_namespace(NS)
    agentcage("kube", "apply", "-c", str(config_file), "--timeout", "30")
    for kind, resource, before in (("Job", "jobs", "Deployment"), ("Pod", "pods", "Job")):
        config_file.write_text(CONFIG.replace("agent_kind: Deployment", f"agent_kind: {kind}"))
        done = agentcage("kube", "apply", "-c", str(config_file), "--timeout", "30")
        assert f"pruned {before} {NS}/{NAMES.workload('agent')}" in done.stderr
        assert kube.cluster.get(resource, NS, NAMES.workload("agent")) is not None
        assert kube.cluster.get("deployments", NS, NAMES.workload("agent")) is None
        status = json.loads(agentcage("kube", "status", "demo", "--json").stdout)
        agent = [w for w in status["workloads"] if w["role"] == "agent"]
        assert [(w["kind"], w["done"]) for w in agent] == [(kind, True)]
    assert kube.cluster.get("jobs", NS, NAMES.workload("agent")) is None  # pruned for the Pod
    agentcage("kube", "delete", "demo")
    assert [o["metadata"]["name"] for o in kube.cluster.all()] == [NS]  # not the cage's
