"""Kubernetes cages: apply, delete and status, and live domain and secret changes.

Objects go to the cluster by server-side apply, in dependency order (namespace, ConfigMaps
and Secrets, service accounts, Services, NetworkPolicies, the proxy and DNS Deployments,
the agent last), so the agent never starts before the way out it is allowed exists.
Deletion goes the other way, by the cage's label, so it removes what an older version of
the cage made too.

A change of the domain list or of a secret reaches the running proxy and resolver by a
rolling restart of just their Deployments (config_roll.py); the agent keeps running.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentcage.cage.kube import cluster, rollout
from agentcage.cage.kube.cluster import KINDS, ClusterApi, ClusterTarget, Manifest, describe
from agentcage.cage.kube.config_roll import payload, roll
from agentcage.cage.kube.kube_record import KubeRecord, load_record, save_record
from agentcage.cage.state import StateStore
from agentcage.config.load import load_config
from agentcage.config.schema import CageConfig
from agentcage.errors import KubeNotFoundError, StateError

CAGE_LABEL = "agentcage.io/cage"
COMPONENT_LABEL = "app.kubernetes.io/component"
SECRET_MANAGER = "agentcage-secret"
APPLY_ORDER = (
    "Namespace",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Service",
    "NetworkPolicy",
    "Deployment",
    "Job",
    "Pod",
)
DEFAULT_TIMEOUT_S = 300.0

Connect = Callable[[ClusterTarget], ClusterApi]
Render = Callable[[CageConfig, str], list[Manifest]]


def selector(name: str) -> str:
    return f"{CAGE_LABEL}={name}"


def is_agent(obj: Manifest) -> bool:
    return (obj["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == "agent"


def ordered(manifests: Iterable[Manifest]) -> list[Manifest]:
    """Dependency order, by name within a kind; the agent after everything else."""
    return sorted(
        manifests,
        key=lambda m: (is_agent(m), APPLY_ORDER.index(m["kind"]), m["metadata"]["name"]),
    )


@dataclass(frozen=True)
class KubeStatus:
    name: str
    context: str
    server: str
    namespace: str
    checked_at: str
    workloads: list[rollout.WorkloadReport]

    @property
    def ready(self) -> bool:
        return bool(self.workloads) and all(w.done for w in self.workloads)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "kubernetes",
            "context": self.context,
            "server": self.server,
            "namespace": self.namespace,
            "checked_at": self.checked_at,
            "ready": self.ready,
            "workloads": [rollout.as_json(w) for w in self.workloads],
        }


class KubeCages:
    def __init__(
        self,
        store: StateStore | None = None,
        connect: Connect = cluster.connect,
        progress: Callable[[str], None] = lambda _: None,
        render: Render | None = None,
    ) -> None:
        self.store = store or StateStore()
        self.connect = connect
        self.render = render or self._render
        self.progress = progress

    # --- apply / delete / status -------------------------------------------------------------

    def deploy(
        self,
        config_path: Path,
        namespace: str | None,
        target: ClusterTarget,
        *,
        force: bool = False,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> tuple[str, KubeRecord]:
        """`kube apply`: load, render and apply the config; the namespace defaults to the
        recorded one, then to `kubernetes.namespace`."""
        config = load_config(config_path)
        recorded = load_record(self.store, config.name)
        ns = namespace or (recorded.namespace if recorded else config.kubernetes.namespace)
        manifests = self.render(config, ns)
        source = config_path.read_text(encoding="utf-8")
        record = self.apply(config, source, manifests, ns, target, force=force, timeout_s=timeout_s)
        return config.name, record

    def apply(
        self,
        config: CageConfig,
        source_text: str,
        manifests: Sequence[Manifest],
        namespace: str,
        target: ClusterTarget,
        *,
        force: bool = False,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> KubeRecord:
        """Apply the cage's objects, record where, then wait for its workloads (None: don't)."""
        name = config.name
        recorded = load_record(self.store, name)
        if self.store.exists(name) and recorded is None:
            raise StateError(
                f"cage {name!r} already exists on this machine's Podman",
                hint="give the Kubernetes cage another name, or destroy the Podman one",
            )
        api = self.connect(target)
        record = KubeRecord(namespace, api.context, target.kubeconfig, target.kubectl)
        if recorded is not None and (recorded.namespace, recorded.context) != (
            namespace,
            api.context,
        ):
            raise StateError(
                f"cage {name!r} runs in namespace {recorded.namespace!r} of context "
                f"{recorded.context!r}",
                hint=f"`agentcage kube delete {name}` first to move it",
            )
        apply_manifests(api, manifests, namespace, force=force, progress=self.progress)
        self.store.save_config(config, source_text)
        save_record(self.store, name, record)
        if timeout_s is not None:
            workloads = [
                (m["kind"], m["metadata"]["name"])
                for m in ordered(manifests)
                if m["kind"] in rollout.WORKLOAD_KINDS
            ]
            self.progress(f"waiting for {len(workloads)} workloads to become ready")
            rollout.wait_ready(api, namespace, workloads, selector(name), timeout_s)
        return record

    def delete(self, name: str, *, missing_ok: bool = False) -> list[str]:
        """Delete every object labelled as this cage, agent first; forget the cage."""
        record = self._record(name, missing_ok=missing_ok)
        if record is None:
            return []
        api = self.connect(_target(record))
        deleted = delete_labelled(api, record.namespace, selector(name))
        if not deleted and not missing_ok:
            raise KubeNotFoundError(
                f"no object of cage {name!r} in namespace {record.namespace!r} "
                f"(context {api.context!r}, server {api.server})",
                hint=f"`agentcage kube delete {name} --missing-ok` forgets it anyway",
            )
        self.store.remove(name)
        return deleted

    def status(self, name: str) -> KubeStatus:
        record = self._require(name)
        api = self.connect(_target(record))
        if api.get(KINDS["Namespace"], None, record.namespace) is None:
            raise KubeNotFoundError(
                f"namespace {record.namespace!r} of cage {name!r} is not in the cluster "
                f"(context {api.context!r}, server {api.server})",
                hint=f"`agentcage kube apply` re-creates it; `agentcage kube delete {name} "
                "--missing-ok` forgets the cage",
            )
        workloads = rollout.report_all(api, record.namespace, selector(name))
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return KubeStatus(name, api.context, api.server, record.namespace, now, workloads)

    # --- live changes ------------------------------------------------------------------------

    def refresh_domains(self, config: CageConfig) -> list[str]:
        """Push a changed domain list: the config ConfigMap, then the proxy and DNS roll."""
        record = self._require(config.name)
        return self.refresh_config(config.name, self.render(config, record.namespace))

    def refresh_config(
        self, name: str, manifests: Sequence[Manifest], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[str]:
        """Apply the re-rendered ConfigMaps; roll the Deployments mounting changed ones."""
        record = self._require(name)
        api = self.connect(_target(record))
        changed = set()
        for obj in manifests:
            if obj["kind"] != "ConfigMap":
                continue
            before = api.get(KINDS["ConfigMap"], record.namespace, obj["metadata"]["name"])
            after = api.apply(obj)
            if payload(before) != payload(after):
                changed.add(("ConfigMap", obj["metadata"]["name"]))
        return roll(api, record.namespace, selector(name), changed, timeout_s)

    def set_secret_value(
        self, name: str, secret: str, key: str, value: str | None, timeout_s: float
    ) -> list[str]:
        """Set (or with None remove) `key` of the Secret `secret`; roll what mounts it."""
        record = self._require(name)
        api = self.connect(_target(record))
        kind = KINDS["Secret"]
        if api.get(kind, record.namespace, secret) is None:
            raise KubeNotFoundError(
                f"Secret {record.namespace}/{secret} of cage {name!r} is not in the cluster "
                f"(context {api.context!r}, server {api.server})",
                hint="`agentcage kube apply` deploys the cage first",
            )
        encoded = None if value is None else base64.b64encode(value.encode()).decode()
        api.merge_patch(kind, record.namespace, secret, {"data": {key: encoded}}, SECRET_MANAGER)
        return roll(api, record.namespace, selector(name), {("Secret", secret)}, timeout_s)

    def secret_keys(self, name: str, secret: str) -> list[str]:
        record = self._require(name)
        api = self.connect(_target(record))
        obj = api.get(KINDS["Secret"], record.namespace, secret)
        return sorted((obj or {}).get("data") or {})

    def _render(self, config: CageConfig, namespace: str) -> list[Manifest]:
        from agentcage.cage.kube.manifests import render_manifests

        return render_manifests(config, namespace=namespace)

    def _require(self, name: str) -> KubeRecord:
        record = self._record(name, missing_ok=False)
        assert record is not None
        return record

    def _record(self, name: str, *, missing_ok: bool) -> KubeRecord | None:
        record = load_record(self.store, name) if self.store.exists(name) else None
        if record is None and not missing_ok:
            raise StateError(
                f"no Kubernetes cage named {name!r}",
                hint="`agentcage kube apply -c CONFIG` deploys one",
            )
        return record


def _target(record: KubeRecord) -> ClusterTarget:
    return ClusterTarget(record.context, record.kubeconfig, record.kubectl)


def apply_manifests(
    api: ClusterApi,
    manifests: Sequence[Manifest],
    namespace: str,
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    objects = ordered(manifests)
    ns_kind = KINDS["Namespace"]
    if not any(o["kind"] == "Namespace" for o in objects) and (
        api.get(ns_kind, None, namespace) is None
    ):
        raise KubeNotFoundError(
            f"namespace {namespace!r} does not exist (context {api.context!r}, "
            f"server {api.server})",
            hint=f"create it (`kubectl create namespace {namespace}`) or choose another "
            "with --namespace",
        )
    for obj in objects:
        api.apply(obj, force=force)
        progress(f"applied {describe(obj)}")


def delete_labelled(api: ClusterApi, namespace: str, label_selector: str) -> list[str]:
    """Every object carrying the label, in reverse dependency order; what was deleted."""
    found: list[Manifest] = []
    if api.get(KINDS["Namespace"], None, namespace) is not None:
        for kind in APPLY_ORDER[1:]:
            found += api.list_labelled(KINDS[kind], namespace, label_selector)
    found += api.list_labelled(KINDS["Namespace"], None, label_selector)
    deleted = []
    for obj in reversed(ordered(found)):
        meta = obj["metadata"]
        if meta.get("ownerReferences"):
            continue  # a controller's pod goes with its controller
        if api.delete(KINDS[obj["kind"]], meta.get("namespace"), meta["name"]):
            deleted.append(describe(obj))
    return deleted
