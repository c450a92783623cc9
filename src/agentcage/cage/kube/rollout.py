"""Where a Kubernetes cage's workloads stand, and waiting until they are ready.

A Deployment is ready as `kubectl rollout status` judges it: the controller has seen the
latest spec (observedGeneration), every replica runs the new template (updated), no old
one is left, and all are available. A Job counts once it is active or done, a bare Pod
once it runs or has succeeded. The wait asks again every half second (plain GETs work
through every proxy and RBAC setup that allows `get`; a watch needs more) and, when time
runs out, names the workload that is not ready and what its pods are waiting for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agentcage.cage.kube.cluster import KINDS, ClusterApi, Manifest
from agentcage.cage.kube.object_names import ROLE_LABEL
from agentcage.errors import KubeRolloutError

WORKLOAD_KINDS = ("Deployment", "Job", "Pod")
_POLL_S = 0.5


@dataclass(frozen=True)
class PodReport:
    name: str
    phase: str
    ready: bool
    restarts: int
    waiting: str | None  # a container's waiting reason: ImagePullBackOff, CrashLoopBackOff


@dataclass(frozen=True)
class WorkloadReport:
    kind: str
    name: str
    role: str | None  # the agentcage.role label: proxy, dns, agent
    desired: int
    ready: int
    updated: int
    available: int
    done: bool  # the rollout is complete (see the module docstring)
    conditions: list[dict[str, str]] = field(default_factory=list)
    pods: list[PodReport] = field(default_factory=list)

    def summary(self) -> str:
        pods = ", ".join(
            f"{p.name} {p.phase}" + (f" ({p.waiting})" if p.waiting else "") for p in self.pods
        )
        return (
            f"{self.kind} {self.name}: {self.ready}/{self.desired} ready, "
            f"{self.updated} updated" + (f"; pods: {pods}" if pods else "; no pods")
        )


def workload_report(obj: Manifest, pods: Sequence[Manifest]) -> WorkloadReport:
    kind, meta = obj["kind"], obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    own = [p for p in pods if _selected(p, obj)]
    reports = [pod_report(p) for p in own]
    if kind == "Deployment":
        desired = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas", 0))
        available = int(status.get("availableReplicas", 0))
        done = (
            int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0))
            and updated == desired
            and int(status.get("replicas", 0)) == desired
            and available == desired
        )
        ready = int(status.get("readyReplicas", 0))
    elif kind == "Job":
        desired = int(spec.get("parallelism", 1))
        ready = int(status.get("ready", 0))
        updated = available = ready
        done = ready >= desired or int(status.get("succeeded", 0)) > 0
    else:
        reports = [pod_report(obj)]
        desired, ready = 1, int(reports[0].ready)
        updated = available = ready
        done = ready == 1 or reports[0].phase == "Succeeded"
    conditions = [
        {k: str(c.get(k, "")) for k in ("type", "status", "reason", "message")}
        for c in status.get("conditions") or []
    ]
    labels = meta.get("labels") or {}
    return WorkloadReport(
        kind=kind,
        name=meta["name"],
        role=labels.get(ROLE_LABEL),
        desired=desired,
        ready=ready,
        updated=updated,
        available=available,
        done=done,
        conditions=conditions,
        pods=reports,
    )


def pod_report(pod: Manifest) -> PodReport:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    waiting = next(
        (
            c["state"]["waiting"].get("reason")
            for c in containers
            if (c.get("state") or {}).get("waiting")
        ),
        None,
    )
    return PodReport(
        name=pod["metadata"]["name"],
        phase=str(status.get("phase", "Unknown")),
        ready=bool(containers) and all(c.get("ready") for c in containers),
        restarts=sum(int(c.get("restartCount", 0)) for c in containers),
        waiting=waiting,
    )


def _selected(pod: Manifest, owner: Manifest) -> bool:
    """Whether `owner` (a Deployment or Job) selects `pod` by its matchLabels."""
    if owner["kind"] == "Pod":
        return False
    wanted = ((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    labels = pod["metadata"].get("labels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def report_all(api: ClusterApi, namespace: str, selector: str) -> list[WorkloadReport]:
    """Every workload labelled with `selector`, Deployments first, each with its pods."""
    pods = api.list_labelled(KINDS["Pod"], namespace, selector)
    found: list[WorkloadReport] = []
    for kind in ("Deployment", "Job"):
        for obj in api.list_labelled(KINDS[kind], namespace, selector):
            found.append(workload_report(obj, pods))
    owned = {p.name for w in found for p in w.pods}
    found += [workload_report(p, []) for p in pods if p["metadata"]["name"] not in owned]
    return sorted(found, key=lambda w: (WORKLOAD_KINDS.index(w.kind), w.name))


def as_json(report: WorkloadReport) -> dict[str, Any]:
    return asdict(report)


def wait_ready(
    api: ClusterApi,
    namespace: str,
    workloads: Sequence[tuple[str, str]],
    selector: str,
    timeout_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until every (kind, name) in `workloads` is ready; else `KubeRolloutError` naming it."""
    deadline = clock() + timeout_s
    pending = list(workloads)
    while pending:
        pods = api.list_labelled(KINDS["Pod"], namespace, selector)
        still = []
        for kind, name in pending:
            obj = api.get(KINDS[kind], namespace, name)
            report = None if obj is None else workload_report(obj, pods)
            if report is None or not report.done:
                _fail_fast(kind, name, namespace, report)
                still.append((kind, name, report))
        if not still:
            return
        if clock() >= deadline:
            kind, name, report = still[0]
            state = report.summary() if report else f"{kind} {name} is gone"
            raise KubeRolloutError(
                f"{kind} {namespace}/{name} did not become ready within {timeout_s:g}s: {state}",
                hint=f"`agentcage kube status` and `kubectl -n {namespace} describe "
                f"{kind.lower()} {name}` show why; --timeout waits longer",
            )
        pending = [(kind, name) for kind, name, _ in still]
        sleep(_POLL_S)


def _fail_fast(kind: str, name: str, namespace: str, report: WorkloadReport | None) -> None:
    """A Deployment past its progress deadline, or a failed Job, will not recover by waiting."""
    if report is None:
        return
    for condition in report.conditions:
        stuck = condition["reason"] == "ProgressDeadlineExceeded"
        failed = condition["type"] == "Failed" and condition["status"] == "True"
        if stuck or failed:
            raise KubeRolloutError(
                f"{kind} {namespace}/{name} failed: {condition['reason']}: "
                f"{condition['message']}; {report.summary()}",
                hint=f"`kubectl -n {namespace} describe {kind.lower()} {name}` shows why",
            )
