"""The cluster client (cage/kube) against the fake API server, with hand-written manifests."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import trustme

from agentcage.cage.kube.cluster import ClusterTarget
from agentcage.cage.kube.config_roll import HASH_ANNOTATION
from agentcage.cage.kube.kube_cages import KubeCages
from agentcage.cage.kube.kube_record import load_record
from agentcage.cage.kube.object_names import ROLE_LABEL
from agentcage.cage.state import StateStore
from agentcage.config.load import load_config
from agentcage.config.schema import CageConfig
from agentcage.errors import (
    ConfigError,
    KubeAuthError,
    KubeConflictError,
    KubeError,
    KubeNotFoundError,
    KubeRolloutError,
    KubeUnreachableError,
    StateError,
)
from tests.integration.kube.conftest import NAMES, hand_render
from tests.support.fake_kube import FakeKubeServer

NS = "cage-demo"


@pytest.fixture
def config(tmp_path: Path) -> CageConfig:
    path = tmp_path / "demo.yaml"
    path.write_text(
        "name: demo\ncontainer:\n  image: example/agent:1\n"
        "secret_injection:\n  - env: API_KEY\n    inject_to: [example.com]\n"
        "domains:\n  allow: [example.com]\n"
    )
    return load_config(path)


@pytest.fixture
def cages(tmp_path: Path) -> KubeCages:
    return KubeCages(StateStore(tmp_path / "state"), render=hand_render)


def _apply(cages: KubeCages, config: CageConfig, kubeconfig: Path, **kw: Any) -> None:
    kw.setdefault("create_namespace", True)
    cages.apply(config, "name: demo\n", NS, ClusterTarget(kubeconfig=str(kubeconfig)), **kw)


def _deployment(kube: FakeKubeServer, component: str) -> dict[str, Any]:
    obj = kube.cluster.get("deployments", NS, NAMES.workload(component))
    assert obj is not None
    return obj


def _pods(kube: FakeKubeServer, component: str) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in kube.cluster.all("pods")
        if p["metadata"]["labels"].get(ROLE_LABEL) == component
    ]


def test_apply_goes_in_dependency_order_and_waits_for_every_workload(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    _apply(cages, config, kubeconfig)
    applied = [path for method, path, ct in kube.cluster.requests if method == "PATCH"]
    assert applied == [
        "/api/v1/namespaces/cage-demo",
        "/api/v1/namespaces/cage-demo/configmaps/agentcage-demo-ca-cert",
        "/api/v1/namespaces/cage-demo/configmaps/agentcage-demo-config",
        "/api/v1/namespaces/cage-demo/secrets/agentcage-demo-fingerprints",
        "/api/v1/namespaces/cage-demo/secrets/agentcage-demo-secrets",
        "/api/v1/namespaces/cage-demo/services/agentcage-demo-proxy",
        "/apis/networking.k8s.io/v1/namespaces/cage-demo/networkpolicies/agentcage-demo-agent",
        "/apis/apps/v1/namespaces/cage-demo/deployments/agentcage-demo-dns",
        "/apis/apps/v1/namespaces/cage-demo/deployments/agentcage-demo-proxy",
        "/apis/apps/v1/namespaces/cage-demo/deployments/agentcage-demo-agent",
    ]
    assert {ct for m, _, ct in kube.cluster.requests if m == "PATCH"} == {
        "application/apply-patch+yaml"
    }
    for component in ("proxy", "dns", "agent"):
        assert _deployment(kube, component)["status"]["readyReplicas"] == 1
    record = load_record(cages.store, "demo")
    assert record is not None and (record.namespace, record.context) == (NS, "fake")


def test_reapply_changes_nothing(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    _apply(cages, config, kubeconfig)
    versions = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in kube.cluster.all()}
    _apply(cages, config, kubeconfig)
    after = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in kube.cluster.all()}
    assert after == versions


def test_secret_reaches_the_proxy_and_fingerprints_while_the_agent_keeps_running(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    _apply(cages, config, kubeconfig)
    agent_pods = _pods(kube, "agent")
    rolled = cages.change_secret("demo", "API_KEY", "sk-real-value", 30)
    assert rolled == [NAMES.workload("dns"), NAMES.workload("proxy")]
    secret = kube.cluster.get("secrets", NS, NAMES.secrets)
    assert secret is not None
    assert base64.b64decode(secret["data"]["API_KEY"]) == b"sk-real-value"
    everything = json.dumps(kube.cluster.all())
    assert everything.count(base64.b64encode(b"sk-real-value").decode()) == 1
    assert "sk-real-value" not in everything
    for role in ("proxy", "dns"):
        deployment = _deployment(kube, role)
        assert HASH_ANNOTATION in deployment["spec"]["template"]["metadata"]["annotations"]
        assert deployment["metadata"]["generation"] == 2
        assert deployment["status"]["readyReplicas"] == 1
    agent = _deployment(kube, "agent")
    assert "annotations" not in agent["spec"]["template"]["metadata"]
    assert agent["metadata"]["generation"] == 1
    assert _pods(kube, "agent") == agent_pods
    # A re-apply (agentcage's own field manager) keeps the value and the annotation.
    _apply(cages, config, kubeconfig)
    assert cages.secret_keys("demo") == ["API_KEY"]
    proxy = _deployment(kube, "proxy")
    assert HASH_ANNOTATION in proxy["spec"]["template"]["metadata"]["annotations"]
    assert proxy["metadata"]["generation"] == 2
    cages.change_secret("demo", "API_KEY", None, 30)
    assert cages.secret_keys("demo") == []
    with pytest.raises(ConfigError, match="cage 'demo' has no secret 'API_KEY'"):
        cages.change_secret("demo", "API_KEY", None, 30)


def test_a_changed_domain_list_rolls_proxy_and_dns_not_the_agent(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    _apply(cages, config, kubeconfig)
    agent_pods = _pods(kube, "agent")
    changed = config.model_copy(
        update={
            "domains": config.domains.model_copy(update={"entries": ["example.com", "example.org"]})
        }
    )
    assert cages.refresh_domains(changed, 30) == [NAMES.workload("dns"), NAMES.workload("proxy")]
    cm = kube.cluster.get("configmaps", NS, NAMES.config)
    assert cm is not None and cm["data"]["domains"] == "example.com\nexample.org\n"
    for role in ("proxy", "dns"):
        deployment = _deployment(kube, role)
        assert deployment["metadata"]["generation"] == 2
        assert deployment["status"]["updatedReplicas"] == deployment["status"]["readyReplicas"] == 1
    assert _deployment(kube, "agent")["metadata"]["generation"] == 1
    assert _pods(kube, "agent") == agent_pods
    assert cages.refresh_domains(changed, 30) == []  # unchanged: nothing rolls


def test_status_reports_each_workload_with_its_pods(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    _apply(cages, config, kubeconfig)
    status = cages.status("demo").as_dict()
    assert status["ready"] is True and status["namespace"] == NS and status["context"] == "fake"
    assert [(w["kind"], w["name"], w["role"]) for w in status["workloads"]] == [
        ("Deployment", NAMES.workload("agent"), "agent"),
        ("Deployment", NAMES.workload("dns"), "dns"),
        ("Deployment", NAMES.workload("proxy"), "proxy"),
    ]
    proxy = status["workloads"][2]
    assert (proxy["desired"], proxy["ready"], proxy["updated"], proxy["available"]) == (1, 1, 1, 1)
    assert [(p["phase"], p["ready"], p["restarts"]) for p in proxy["pods"]] == [
        ("Running", True, 0)
    ]
    assert {c["type"] for c in proxy["conditions"]} == {"Available", "Progressing"}


def test_delete_leaves_nothing_and_forgets_the_cage(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    _apply(cages, config, kubeconfig)
    deleted = cages.delete("demo")
    assert deleted[0] == "Deployment cage-demo/agentcage-demo-agent"
    assert deleted[-1] == "Namespace cage-demo"  # made by --create-namespace
    assert kube.cluster.all() == []
    assert not cages.store.exists("demo")
    with pytest.raises(StateError, match=r"no Kubernetes cage named 'demo'"):
        cages.delete("demo")
    assert cages.delete("demo", missing_ok=True) == []


def test_delete_of_a_cage_already_gone_from_the_cluster(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    _apply(cages, config, kubeconfig)
    kube.cluster.delete("namespaces", None, NS)
    with pytest.raises(KubeNotFoundError, match=r"no object of cage 'demo'.*context 'fake'"):
        cages.delete("demo")
    assert cages.delete("demo", missing_ok=True) == []
    assert not cages.store.exists("demo")


def test_a_workload_that_never_gets_ready_is_named(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    kube.cluster.stuck.add(NAMES.workload("proxy"))
    with pytest.raises(KubeRolloutError) as caught:
        _apply(cages, config, kubeconfig, timeout_s=1.0)
    message = caught.value.message
    assert "Deployment cage-demo/agentcage-demo-proxy did not become ready within 1s" in message
    assert "0/1 ready" in message and "ImagePullBackOff" in message


def test_missing_namespace_is_named(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    with pytest.raises(KubeNotFoundError, match=r"namespace 'cage-demo' does not exist.*'fake'"):
        _apply(cages, config, kubeconfig, create_namespace=False)
    assert kube.cluster.all() == []
    assert not cages.store.exists("demo")


def test_a_namespace_the_cage_did_not_make_stays(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    kube.cluster.add_namespace(NS)
    _apply(cages, config, kubeconfig, create_namespace=False)
    assert "Namespace cage-demo" not in cages.delete("demo")
    assert [o["metadata"]["name"] for o in kube.cluster.all()] == [NS]


def test_unreachable_server_names_context_and_server(
    kube: FakeKubeServer, tmp_path: Path, cages: KubeCages, config: CageConfig
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{probe.getsockname()[1]}"
    kubeconfig = kube.kubeconfig(tmp_path / "dead", server=dead, context="gone")
    with pytest.raises(KubeUnreachableError) as caught:
        _apply(cages, config, kubeconfig)
    assert f"cannot reach the API server {dead} of context 'gone'" in caught.value.message
    assert "cluster-info" in (caught.value.hint or "")
    assert not cages.store.exists("demo")


def test_a_server_certificate_the_kubeconfig_does_not_trust_is_refused(
    kube: FakeKubeServer, tmp_path: Path, cages: KubeCages, config: CageConfig
) -> None:
    other = kube.kubeconfig(tmp_path / "other-ca", ca=trustme.CA(), context="spoofed")
    with pytest.raises(KubeUnreachableError) as caught:
        _apply(cages, config, other)
    assert "of context 'spoofed'" in caught.value.message
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
    assert kube.cluster.requests == []


def test_rejected_credentials_and_missing_rights_are_named(
    kube: FakeKubeServer, tmp_path: Path, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    wrong = kube.kubeconfig(tmp_path / "wrong", token="stale", context="stale-login")
    with pytest.raises(KubeAuthError, match=r"did not accept the credentials.*'stale-login'"):
        _apply(cages, config, wrong)
    kube.cluster.forbidden.add(("PATCH", "deployments"))
    with pytest.raises(KubeAuthError) as caught:
        _apply(cages, config, kubeconfig)
    assert (
        "apply Deployment cage-demo/agentcage-demo-dns: forbidden (context 'fake'"
        in caught.value.message
    )
    assert "auth can-i" in (caught.value.hint or "")
    # What went out before the refusal is recorded, so delete can clean it up.
    assert kube.cluster.get("secrets", NS, NAMES.secrets) is not None
    kube.cluster.forbidden.clear()
    cages.delete("demo")
    assert kube.cluster.all() == []


def test_a_field_someone_else_changed_is_a_conflict_until_forced(
    kube: FakeKubeServer, kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    _apply(cages, config, kubeconfig)
    kube.cluster.merge_patch(
        "deployments", NS, NAMES.workload("dns"), {"spec": {"replicas": 3}}, "kubectl-edit"
    )
    with pytest.raises(
        KubeConflictError,
        match=r'Deployment cage-demo/agentcage-demo-dns: conflict.*"kubectl-edit"',
    ):
        _apply(cages, config, kubeconfig)
    _apply(cages, config, kubeconfig, force=True)
    assert _deployment(kube, "dns")["spec"]["replicas"] == 1


def test_an_unknown_context_names_the_kubeconfig(
    kubeconfig: Path, cages: KubeCages, config: CageConfig
) -> None:
    target = ClusterTarget(context="nope", kubeconfig=str(kubeconfig))
    with pytest.raises(KubeError, match=rf"kubeconfig {kubeconfig}: cannot use nope"):
        cages.apply(config, "", NS, target)
