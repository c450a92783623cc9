"""Rollout readiness, the wait's error, what a Deployment mounts, and apply order."""

from __future__ import annotations

from typing import Any

import pytest

from agentcage.cage.kube import rollout
from agentcage.cage.kube.cluster import Kind, Manifest
from agentcage.cage.kube.config_roll import mounts
from agentcage.cage.kube.kube_cages import ordered
from agentcage.errors import KubeRolloutError


def _deployment(generation: int, observed: int, updated: int, ready: int) -> Manifest:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "generation": generation,
            "labels": {"agentcage.role": "proxy"},
        },
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {
            "observedGeneration": observed,
            "replicas": 2,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


def _pod(name: str, phase: str, waiting: str | None = None, restarts: int = 0) -> Manifest:
    state: dict[str, Any] = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "c", "ready": not waiting, "restartCount": restarts, "state": state}
            ],
        },
    }


@pytest.mark.parametrize(
    ("generation", "observed", "updated", "ready", "done"),
    [
        (2, 1, 2, 2, False),  # the controller has not seen the new spec yet
        (2, 2, 1, 2, False),  # one replica still runs the old template
        (2, 2, 2, 1, False),  # one is not available
        (2, 2, 2, 2, True),
    ],
)
def test_a_deployment_is_done_as_kubectl_rollout_status_judges(
    generation: int, observed: int, updated: int, ready: int, done: bool
) -> None:
    report = rollout.workload_report(_deployment(generation, observed, updated, ready), [])
    assert report.done is done and report.role == "proxy"


def test_pods_are_matched_by_selector_with_phase_restarts_and_waiting_reason() -> None:
    other = _pod("db-1", "Running")
    other["metadata"]["labels"] = {"app": "db"}
    pods = [_pod("web-1", "Running", restarts=3), _pod("web-2", "Pending", "ErrImagePull"), other]
    report = rollout.workload_report(_deployment(1, 1, 2, 1), pods)
    assert [(p.name, p.phase, p.ready, p.restarts, p.waiting) for p in report.pods] == [
        ("web-1", "Running", True, 3, None),
        ("web-2", "Pending", False, 0, "ErrImagePull"),
    ]
    assert report.summary() == (
        "Deployment web: 1/2 ready, 2 updated; pods: web-1 Running, web-2 Pending (ErrImagePull)"
    )


def test_jobs_and_bare_pods() -> None:
    job = {"kind": "Job", "metadata": {"name": "run"}, "spec": {}, "status": {"succeeded": 1}}
    assert rollout.workload_report(job, []).done
    assert rollout.workload_report(_pod("agent", "Running"), []).done
    assert not rollout.workload_report(_pod("agent", "Pending", "ImagePullBackOff"), []).done


class _Frozen:
    """A cluster whose Deployment never progresses; `conditions` it reports."""

    context, server = "c", "https://cluster"

    def __init__(self, conditions: list[dict[str, str]]) -> None:
        self.obj = _deployment(2, 2, 2, 0)
        self.obj["status"]["conditions"] = conditions

    def get(self, kind: Kind, namespace: str | None, name: str) -> Manifest | None:
        return self.obj

    def list_labelled(self, kind: Kind, namespace: str | None, selector: str) -> list[Manifest]:
        return [_pod("web-1", "Pending", "ImagePullBackOff")]


def test_the_wait_names_the_workload_that_did_not_get_ready() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(KubeRolloutError) as caught:
        rollout.wait_ready(
            _Frozen([]),  # type: ignore[arg-type]
            "ns",
            [("Deployment", "web")],
            "x=y",
            5,
            clock=lambda: now[0],
            sleep=sleep,
        )
    assert caught.value.message == (
        "Deployment ns/web did not become ready within 5s: Deployment web: 0/2 ready, "
        "2 updated; pods: web-1 Pending (ImagePullBackOff)"
    )
    assert now[0] == 5.0


def test_a_deployment_past_its_progress_deadline_fails_at_once() -> None:
    stuck = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet has timed out progressing."}  # fmt: skip
    with pytest.raises(KubeRolloutError, match="ns/web failed: ProgressDeadlineExceeded"):
        frozen = _Frozen([stuck])
        rollout.wait_ready(frozen, "ns", [("Deployment", "web")], "x=y", 60)  # type: ignore[arg-type]


def test_mounts_reads_volumes_projections_env_and_env_from() -> None:
    secret_key = {"secretKeyRef": {"name": "s-key", "key": "k"}}
    config_key = {"configMapKeyRef": {"name": "cm-key", "key": "k"}}
    secret_from = {"secretRef": {"name": "s-from"}}
    deployment = {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [
                        {"name": "a", "configMap": {"name": "cm-vol"}},
                        {"name": "b", "secret": {"secretName": "s-vol"}},
                        {"name": "c", "projected": {"sources": [
                            {"configMap": {"name": "cm-proj"}}, {"secret": {"name": "s-proj"}}
                        ]}},
                        {"name": "d", "emptyDir": {}},
                    ],
                    "initContainers": [{"name": "i", "envFrom": [secret_from]}],
                    "containers": [{
                        "name": "c",
                        "envFrom": [{"configMapRef": {"name": "cm-from"}}],
                        "env": [
                            {"name": "A", "valueFrom": secret_key},
                            {"name": "B", "valueFrom": config_key},
                            {"name": "C", "value": "plain"},
                        ],
                    }],
                }
            }
        }
    }  # fmt: skip
    assert mounts(deployment) == {
        ("ConfigMap", "cm-vol"), ("ConfigMap", "cm-proj"), ("ConfigMap", "cm-from"),
        ("ConfigMap", "cm-key"), ("Secret", "s-vol"), ("Secret", "s-proj"),
        ("Secret", "s-from"), ("Secret", "s-key"),
    }  # fmt: skip


def test_apply_order_puts_the_agent_last_whatever_its_kind() -> None:
    def obj(kind: str, name: str, role: str | None = None) -> Manifest:
        labels = {"agentcage.role": role} if role else {}
        return {"kind": kind, "metadata": {"name": name, "labels": labels}}

    objects = [
        obj("Pod", "agent", "agent"),
        obj("Deployment", "proxy", "proxy"),
        obj("NetworkPolicy", "p"),
        obj("Secret", "s"),
        obj("Service", "proxy", "proxy"),
        obj("ConfigMap", "c"),
        obj("Deployment", "dns", "dns"),
    ]
    assert [(o["kind"], o["metadata"]["name"]) for o in ordered(objects)] == [
        ("ConfigMap", "c"), ("Secret", "s"), ("Service", "proxy"), ("NetworkPolicy", "p"),
        ("Deployment", "dns"), ("Deployment", "proxy"), ("Pod", "agent"),
    ]  # fmt: skip
