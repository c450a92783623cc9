"""Kubernetes cages: apply, delete and status, and live domain and secret changes.

Objects go to the cluster by server-side apply, in dependency order (namespace, ConfigMaps
and Secrets, service accounts, Services, NetworkPolicies, the proxy and DNS Deployments,
the agent last), so the agent never starts before the way out it is allowed exists.
Deletion goes the other way, by the cage's label, so it removes what an older version of
the cage made too; apply prunes the same way what the config no longer makes.

A change of the domain list or of a secret reaches the running proxy and resolver by a
rolling restart of just their Deployments (config_roll.py); the agent keeps running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentcage.cage.contract import CANARY_SEED_ENV
from agentcage.cage.kube import cluster, rollout
from agentcage.cage.kube.cluster import (
    KINDS,
    ClusterApi,
    ClusterTarget,
    Manifest,
    describe,
    secret_values,
)
from agentcage.cage.kube.config_roll import payload, roll
from agentcage.cage.kube.kube_record import KubeRecord, load_record, save_record
from agentcage.cage.kube.object_names import CAGE_LABEL, ROLE_LABEL, KubeNames
from agentcage.cage.state import StateStore
from agentcage.config.load import load_config
from agentcage.config.schema import CageConfig
from agentcage.errors import ConfigError, KubeNotFoundError, StateError

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
# (cluster, config, namespace, secret values or None for the held ones) -> the objects
Render = Callable[[ClusterApi, CageConfig, str, Mapping[str, str] | None], list[Manifest]]


def selector(name: str) -> str:
    return f"{CAGE_LABEL}={name}"


def is_agent(obj: Manifest) -> bool:
    return (obj["metadata"].get("labels") or {}).get(ROLE_LABEL) == "agent"


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


def _cage_objects(
    api: ClusterApi, config: CageConfig, namespace: str, values: Mapping[str, str] | None
) -> list[Manifest]:
    # Rendering loads the cage's unit model and the leak engine's fingerprints: only
    # when a command needs the objects, not for `kube status` or `delete`.
    from agentcage.cage.kube.cage_objects import cage_objects

    return cage_objects(api, config, namespace, values)


class KubeCages:
    def __init__(
        self,
        store: StateStore | None = None,
        connect: Connect = cluster.connect,
        progress: Callable[[str], None] = lambda _: None,
        render: Render = _cage_objects,
    ) -> None:
        self.store = store or StateStore()
        self.connect = connect
        self.progress = progress
        self.render = render

    # --- apply / delete / status -------------------------------------------------------------

    def deploy(
        self,
        config_path: Path,
        namespace: str | None,
        target: ClusterTarget,
        **options: Any,
    ) -> tuple[str, KubeRecord]:
        """`kube apply`: the namespace defaults to the recorded one, then to
        `kubernetes.namespace`; `options` as for `apply`."""
        config = load_config(config_path)
        recorded = load_record(self.store, config.name)
        ns = namespace or (recorded.namespace if recorded else config.kubernetes.namespace)
        source = config_path.read_text(encoding="utf-8")
        return config.name, self.apply(config, source, ns, target, **options)

    def apply(
        self,
        config: CageConfig,
        source_text: str,
        namespace: str,
        target: ClusterTarget,
        *,
        force: bool = False,
        create_namespace: bool = False,
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
        if recorded is not None and (recorded.namespace, recorded.context) != (
            namespace,
            api.context,
        ):
            raise StateError(
                f"cage {name!r} runs in namespace {recorded.namespace!r} of context "
                f"{recorded.context!r}",
                hint=f"`agentcage kube delete {name}` first to move it",
            )
        ensure_namespace(api, namespace, name, create=create_namespace)
        manifests = self.render(api, config, namespace, None)
        record = KubeRecord(namespace, api.context, target.kubeconfig, target.kubectl)
        # Recorded before the first object goes out: an apply that fails half-way leaves
        # a cage that `kube delete` can find and clean up.
        self.store.save_config(config, source_text)
        save_record(self.store, name, record)
        apply_manifests(api, manifests, force=force, progress=self.progress)
        # What an earlier apply made and this config no longer has (another agent kind,
        # a dropped upstream CA): labelled as the cage's, so found and removed.
        for line in delete_labelled(api, namespace, selector(name), keep=manifests):
            self.progress(f"pruned {line}")
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

    def refresh_domains(
        self, config: CageConfig, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[str]:
        """Push a changed config (the domain list): its ConfigMap changes, proxy and DNS roll."""
        record = self._require(config.name)
        api = self.connect(_target(record))
        objects = self.render(api, config, record.namespace, None)
        return self._refresh(api, record.namespace, config.name, objects, timeout_s)

    def change_secret(
        self, name: str, key: str, value: str | None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[str]:
        """Set (or with None remove) one secret value; roll the Deployments mounting what
        changed (the proxy's secrets, the DNS pod's fingerprints). Returns them."""
        record = self._require(name)
        config = self.store.load_config(name)
        api = self.connect(_target(record))
        values = self._values(api, record.namespace, name)
        if value is not None:
            values[key] = value
        elif values.pop(key, None) is None:
            raise ConfigError(f"cage {name!r} has no secret {key!r}")
        objects = self.render(api, config, record.namespace, values)
        return self._refresh(api, record.namespace, name, objects, timeout_s)

    def secret_keys(self, name: str) -> list[str]:
        record = self._require(name)
        return sorted(self._values(self.connect(_target(record)), record.namespace, name))

    def _values(self, api: ClusterApi, namespace: str, name: str) -> dict[str, str]:
        """The secret values the cluster holds (never printed), the decoy seed left out."""
        secret = api.get(KINDS["Secret"], namespace, KubeNames(name).secrets)
        if secret is None:
            raise KubeNotFoundError(
                f"Secret {namespace}/{KubeNames(name).secrets} of cage {name!r} is not in the "
                f"cluster (context {api.context!r}, server {api.server})",
                hint="`agentcage kube apply` deploys the cage first",
            )
        values = secret_values(secret)
        values.pop(CANARY_SEED_ENV, None)
        return values

    def _refresh(
        self,
        api: ClusterApi,
        namespace: str,
        name: str,
        objects: Sequence[Manifest],
        timeout_s: float,
    ) -> list[str]:
        """Apply the ConfigMaps and Secrets among `objects`; roll what mounts changed ones."""
        changed = set()
        for obj in ordered(objects):
            if obj["kind"] not in ("ConfigMap", "Secret"):
                continue
            before = api.get(KINDS[obj["kind"]], namespace, obj["metadata"]["name"])
            after = api.apply(obj)
            if payload(before) != payload(after):
                changed.add((obj["kind"], obj["metadata"]["name"]))
        return roll(api, namespace, selector(name), changed, timeout_s)

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


def ensure_namespace(api: ClusterApi, namespace: str, cage: str, *, create: bool) -> None:
    """A missing namespace is an error unless `create`: then it is made, labelled as the
    cage's, so `kube delete` removes it again."""
    if api.get(KINDS["Namespace"], None, namespace) is not None:
        return
    if not create:
        raise KubeNotFoundError(
            f"namespace {namespace!r} does not exist (context {api.context!r}, "
            f"server {api.server})",
            hint=f"create it (`kubectl create namespace {namespace}`), choose another with "
            "--namespace, or pass --create-namespace",
        )
    labels = {CAGE_LABEL: cage}
    api.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}}
    )


def apply_manifests(
    api: ClusterApi,
    manifests: Sequence[Manifest],
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    for obj in ordered(manifests):
        api.apply(obj, force=force)
        progress(f"applied {describe(obj)}")


def delete_labelled(
    api: ClusterApi,
    namespace: str,
    label_selector: str,
    keep: Iterable[Manifest] = (),
) -> list[str]:
    """Every object carrying the label but not in `keep`, in reverse dependency order
    (the namespace last, and only when nothing is kept); what was deleted."""
    kept = {(o["kind"], o["metadata"]["name"]) for o in keep}
    found: list[Manifest] = []
    if api.get(KINDS["Namespace"], None, namespace) is not None:
        for kind in APPLY_ORDER[1:]:
            found += api.list_labelled(KINDS[kind], namespace, label_selector)
    if not kept:
        found += api.list_labelled(KINDS["Namespace"], None, label_selector)
    deleted = []
    for obj in reversed(ordered(found)):
        meta = obj["metadata"]
        if meta.get("ownerReferences") or (obj["kind"], meta["name"]) in kept:
            continue  # a controller's pod goes with its controller
        if api.delete(KINDS[obj["kind"]], meta.get("namespace"), meta["name"]):
            deleted.append(describe(obj))
    return deleted
