"""Which cages run on Kubernetes, and where: `kube.json` beside the cage's config.

A cage applied with `agentcage kube apply` keeps its config in the same state store as a
Podman cage, so `domain` and `secret` find it by name; this record says it is a Kubernetes
cage and names the namespace and the resolved kubeconfig context it was applied to, so
later commands ask that cluster even after the user switches their current context.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from agentcage.cage.state import StateStore
from agentcage.errors import StateError

RECORD_FILE = "kube.json"


@dataclass(frozen=True)
class KubeRecord:
    namespace: str
    context: str
    kubeconfig: str | None = None  # None: $KUBECONFIG or ~/.kube/config at each call
    kubectl: str | None = None  # a kubectl binary used instead of the Python client


def load_record(store: StateStore, name: str) -> KubeRecord | None:
    data = store.read_json(name, RECORD_FILE)
    if data is None:
        return None
    try:
        return KubeRecord(**data)
    except TypeError as exc:
        raise StateError(f"{name}/{RECORD_FILE}: damaged state ({exc})") from exc


def save_record(store: StateStore, name: str, record: KubeRecord) -> None:
    store.write(name, RECORD_FILE, json.dumps(asdict(record), indent=2, sort_keys=True) + "\n")


def is_kube(store: StateStore, name: str) -> bool:
    return store.exists(name) and load_record(store, name) is not None


def refuse_kube(store: StateStore, name: str) -> None:
    """For the Podman-only commands (`cage status|start|stop|update|destroy`)."""
    record = load_record(store, name) if store.exists(name) else None
    if record is not None:
        raise StateError(
            f"cage {name!r} runs on Kubernetes (namespace {record.namespace!r}, context "
            f"{record.context!r})",
            hint=f"`agentcage kube status|apply|delete {name}` manage it",
        )
