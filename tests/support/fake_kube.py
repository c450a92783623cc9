"""A fake Kubernetes API server on loopback: real HTTPS, the REST protocol, no cluster.

It speaks what agentcage's cluster client uses, for the kinds a cage is made of: create
(POST), get, list with an equality `labelSelector`, delete (a namespace takes its objects
with it, a Deployment its pods), and PATCH as server-side apply
(`application/apply-patch+yaml`, JSON bodies) or merge patch (`merge-patch+json`, and
`strategic-merge-patch+json` treated the same: lists are replaced whole). Server-side
apply keeps field ownership per manager at the level of leaf fields (lists are atomic):
a manager's re-apply removes the fields it owned and no longer sends, a field another
manager set with a different value is a 409 unless `force=true`.

It advances the status fields itself, one step per read of the object: a Deployment whose
pod template changed gets a new generation and new pods (Pending, then Running and
ready); names in `stuck` never get ready (their pods wait in ImagePullBackOff), and
those also in `past_deadline` report ProgressDeadlineExceeded as the controller would. Bearer
tokens are checked (401); `forbidden` holds (method, resource) pairs answered 403.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

Obj = dict[str, Any]
Key = tuple[str, str | None, str]  # (resource, namespace, name)
_CLUSTER_SCOPED = {"namespaces"}
_LIST_KIND = {
    "namespaces": "NamespaceList",
    "configmaps": "ConfigMapList",
    "secrets": "SecretList",
    "serviceaccounts": "ServiceAccountList",
    "services": "ServiceList",
    "pods": "PodList",
    "networkpolicies": "NetworkPolicyList",
    "deployments": "DeploymentList",
    "jobs": "JobList",
}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass
class Stored:
    obj: Obj
    owners: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    steps: int = 0  # status steps taken since the last spec change


class FakeCluster:
    """The objects and the rules; `FakeKubeServer` puts HTTP in front of it."""

    def __init__(self) -> None:
        self.objects: dict[Key, Stored] = {}
        self.stuck: set[str] = set()
        self.past_deadline: set[str] = set()
        self.forbidden: set[tuple[str, str]] = set()
        self.requests: list[tuple[str, str, str]] = []  # method, path, content type
        self.lock = threading.Lock()
        self._version = 0

    # --- what tests look at --------------------------------------------------------------

    def get(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        stored = self.objects.get((resource, namespace, name))
        return None if stored is None else stored.obj

    def all(self, resource: str | None = None) -> list[Obj]:
        return [
            s.obj
            for k, s in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
            if resource in (None, k[0])
        ]

    def add_namespace(self, name: str) -> None:
        self.objects[("namespaces", None, name)] = Stored(
            self._new({"metadata": {"name": name}}, "namespaces", None)
        )

    # --- the verbs -------------------------------------------------------------------------

    def read(self, resource: str, namespace: str | None, name: str) -> Obj:
        stored = self._find(resource, namespace, name)
        self._advance(resource, namespace, stored)
        return stored.obj

    def list(self, resource: str, namespace: str | None, selector: str) -> list[Obj]:
        wanted = dict(p.split("=", 1) for p in selector.split(",") if p)
        found = []
        for (res, ns, _), stored in sorted(self.objects.items(), key=lambda kv: str(kv[0])):
            labels = stored.obj["metadata"].get("labels") or {}
            if (
                res == resource
                and (namespace is None or ns == namespace)
                and all(labels.get(k) == v for k, v in wanted.items())
            ):
                self._advance(res, ns, stored)
                found.append(stored.obj)
        return found

    def create(self, resource: str, namespace: str | None, body: Obj, manager: str) -> Obj:
        name = body["metadata"]["name"]
        if (resource, namespace, name) in self.objects:
            raise ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists')
        self._require_namespace(namespace)
        stored = Stored(self._new(body, resource, namespace), {manager: set(_leaves(body))})
        self.objects[(resource, namespace, name)] = stored
        self._spec_changed(resource, namespace, stored)
        return stored.obj

    def apply(
        self, resource: str, namespace: str | None, name: str, body: Obj, manager: str, force: bool
    ) -> Obj:
        key = (resource, namespace, name)
        if key not in self.objects:
            return self.create(resource, namespace, body, manager)
        stored = self.objects[key]
        sent = set(_leaves(body))
        conflicts = sorted(
            (other, path)
            for other, paths in stored.owners.items()
            if other != manager
            for path in paths & sent
            if _at(stored.obj, path) != _at(body, path)
        )
        if conflicts and not force:
            shown = ", ".join(f'conflict with "{m}": .{".".join(p)}' for m, p in conflicts)
            raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict: {shown}")
        before = copy.deepcopy(stored.obj)
        others = set().union(*(p for m, p in stored.owners.items() if m != manager))
        for path in stored.owners.get(manager, set()) - sent - others:
            _remove(stored.obj, path)
        _merge(stored.obj, body)
        for other, paths in stored.owners.items():
            if other != manager:
                paths -= {p for _, p in conflicts}
        stored.owners[manager] = sent
        self._updated(resource, namespace, stored, before)
        return stored.obj

    def merge_patch(
        self, resource: str, namespace: str | None, name: str, patch: Obj, manager: str
    ) -> Obj:
        stored = self._find(resource, namespace, name)
        before = copy.deepcopy(stored.obj)
        _merge(stored.obj, patch, nulls_delete=True)
        touched = set(_leaves(patch))
        for paths in stored.owners.values():
            paths -= touched
        set_now = {p for p in touched if _at(patch, p) is not None}
        stored.owners.setdefault(manager, set()).update(set_now)
        self._updated(resource, namespace, stored, before)
        return stored.obj

    def delete(self, resource: str, namespace: str | None, name: str) -> Obj:
        stored = self._find(resource, namespace, name)
        del self.objects[(resource, namespace, name)]
        if resource == "namespaces":
            for key in [k for k in self.objects if k[1] == name]:
                del self.objects[key]
        if resource == "deployments":
            self._delete_pods(namespace, name)
        return stored.obj

    # --- bookkeeping ---------------------------------------------------------------------

    def _find(self, resource: str, namespace: str | None, name: str) -> Stored:
        stored = self.objects.get((resource, namespace, name))
        if stored is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        return stored

    def _require_namespace(self, namespace: str | None) -> None:
        if namespace is not None and ("namespaces", None, namespace) not in self.objects:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')

    def _new(self, body: Obj, resource: str, namespace: str | None) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if namespace is not None:
            meta["namespace"] = namespace
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp="2026-01-01T00:00:00Z")
        self._bump(obj)
        return obj

    def _bump(self, obj: Obj) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)

    def _updated(self, resource: str, namespace: str | None, stored: Stored, before: Obj) -> None:
        if stored.obj == before:
            return
        self._bump(stored.obj)
        if stored.obj.get("spec") != before.get("spec"):
            stored.obj["metadata"]["generation"] += 1
            self._spec_changed(resource, namespace, stored)

    def _spec_changed(self, resource: str, namespace: str | None, stored: Stored) -> None:
        stored.steps = 0
        if resource == "deployments":
            stored.obj.setdefault("status", {})["observedGeneration"] = (
                stored.obj["metadata"]["generation"] - 1
            )

    def _advance(self, resource: str, namespace: str | None, stored: Stored) -> None:
        """One step of the controllers' work, taken when the object is read."""
        obj, name = stored.obj, stored.obj["metadata"]["name"]
        stuck = name in self.stuck
        if resource == "deployments" and stored.steps < 2:
            stored.steps += 1
            self._step_deployment(namespace, obj, stuck and stored.steps == 2, stored.steps)
        elif resource == "jobs" and not stuck:
            obj["status"] = {"active": 1, "ready": 1}
        elif resource == "pods" and "status" not in obj:
            obj["status"] = _pod_status(obj, running=not stuck)

    def _step_deployment(self, namespace: str | None, obj: Obj, stuck: bool, step: int) -> None:
        desired = int(obj["spec"].get("replicas", 1))
        template = obj["spec"]["template"]
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        status = obj.setdefault("status", {})
        if step == 1:
            self._delete_pods(namespace, obj["metadata"]["name"], keep=digest)
            for i in range(desired):
                pod_name = f"{obj['metadata']['name']}-{digest}-{i}"
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod_name,
                        "namespace": namespace,
                        "labels": dict(template["metadata"].get("labels") or {}),
                        "annotations": {"fake/owner": obj["metadata"]["name"]},
                        "ownerReferences": [
                            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": digest}
                        ],
                    },
                    "spec": copy.deepcopy(template["spec"]),
                }
                pod["status"] = _pod_status(pod, running=False)
                self.objects.setdefault(
                    ("pods", namespace, pod_name), Stored(self._new(pod, "pods", namespace))
                )
            status.update(
                observedGeneration=obj["metadata"]["generation"],
                replicas=desired,
                updatedReplicas=desired,
                readyReplicas=0,
                availableReplicas=0,
            )
            status["conditions"] = [_condition("Progressing", "True", "ReplicaSetUpdated")]
            return
        if stuck:
            if obj["metadata"]["name"] in self.past_deadline:
                status["conditions"] = [
                    _condition("Progressing", "False", "ProgressDeadlineExceeded")
                ]
            return
        for key, stored in self.objects.items():
            if (
                key[0] == "pods"
                and key[1] == namespace
                and (stored.obj["metadata"].get("annotations") or {}).get("fake/owner")
                == obj["metadata"]["name"]
            ):
                stored.obj["status"] = _pod_status(stored.obj, running=True)
        status.update(readyReplicas=desired, availableReplicas=desired)
        status["conditions"] = [
            _condition("Available", "True", "MinimumReplicasAvailable"),
            _condition("Progressing", "True", "NewReplicaSetAvailable"),
        ]

    def _delete_pods(self, namespace: str | None, owner: str, keep: str = "") -> None:
        for key in [
            k
            for k, s in self.objects.items()
            if k[0] == "pods"
            and k[1] == namespace
            and (s.obj["metadata"].get("annotations") or {}).get("fake/owner") == owner
            and not (keep and f"-{keep}-" in k[2])
        ]:
            del self.objects[key]


def _pod_status(pod: Obj, running: bool) -> Obj:
    containers = pod["spec"].get("containers") or []
    state = {"running": {}} if running else {"waiting": {"reason": "ImagePullBackOff"}}
    return {
        "phase": "Running" if running else "Pending",
        "containerStatuses": [
            {"name": c["name"], "ready": running, "restartCount": 0, "state": state}
            for c in containers
        ],
    }


def _condition(kind: str, status: str, reason: str) -> Obj:
    return {"type": kind, "status": status, "reason": reason, "message": reason}


def _leaves(obj: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            yield from _leaves(value, (*prefix, key))
    elif prefix:
        yield prefix


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _remove(obj: Obj, path: tuple[str, ...]) -> None:
    parent = _at(obj, path[:-1]) if len(path) > 1 else obj
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _merge(target: Obj, patch: Obj, *, nulls_delete: bool = False) -> None:
    for key, value in patch.items():
        if value is None and nulls_delete:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, nulls_delete=nulls_delete)
        else:
            target[key] = copy.deepcopy(value)


def parse_path(path: str) -> tuple[str, str | None, str | None]:
    """(resource, namespace, name) of /api/v1/... and /apis/GROUP/VERSION/... paths."""
    parts = [p for p in path.split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    namespace = None
    if parts[:1] == ["namespaces"] and len(parts) >= 3:
        namespace, parts = parts[1], parts[2:]
    if not parts:
        raise ApiError(404, "NotFound", f"no route {path}")
    return parts[0], namespace, (parts[1] if len(parts) > 1 else None)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        cluster = self.server.cluster
        try:
            if self.headers.get("Authorization") != f"Bearer {self.server.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            with cluster.lock:
                cluster.requests.append((self.command, url.path, content_type))
                code, body = 200, self._route(url.path, query, raw, content_type)
        except ApiError as exc:
            code, body = (
                exc.code,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": exc.message,
                    "reason": exc.reason,
                    "code": exc.code,
                },
            )
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, path: str, query: dict[str, str], raw: bytes, content_type: str) -> Obj:
        cluster = self.server.cluster
        resource, namespace, name = parse_path(path)
        if (self.command, resource) in cluster.forbidden:
            raise ApiError(
                403,
                "Forbidden",
                f'{resource} is forbidden: User "fake" cannot '
                f'{self.command.lower()} resource "{resource}"',
            )
        if resource in _CLUSTER_SCOPED:
            namespace = None
        body = json.loads(raw) if raw else {}
        if name is None:
            if self.command == "GET":
                items = cluster.list(resource, namespace, query.get("labelSelector", ""))
                stripped = [
                    {k: v for k, v in i.items() if k not in ("apiVersion", "kind")} for i in items
                ]
                return {
                    "kind": _LIST_KIND.get(resource, "List"),
                    "apiVersion": "v1",
                    "items": stripped,
                }
            if self.command == "POST":
                return cluster.create(resource, namespace, body, "before-first-apply")
            raise ApiError(405, "MethodNotAllowed", self.command)
        if self.command == "GET":
            return cluster.read(resource, namespace, name)
        if self.command == "DELETE":
            return cluster.delete(resource, namespace, name)
        if self.command == "PATCH" and content_type.startswith("application/apply-patch"):
            if "fieldManager" not in query:
                raise ApiError(400, "BadRequest", "fieldManager is required for apply")
            return cluster.apply(
                resource, namespace, name, body, query["fieldManager"], query.get("force") == "true"
            )
        if self.command == "PATCH" and content_type.split(";")[0] in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            return cluster.merge_patch(
                resource, namespace, name, body, query.get("fieldManager", "unknown")
            )
        raise ApiError(415, "UnsupportedMediaType", f"{self.command} {content_type}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cluster: FakeCluster
    token: str


class FakeKubeServer:
    """The fake over HTTPS on 127.0.0.1, with a kubeconfig for it."""

    def __init__(self, ca: trustme.CA, token: str = "fake-token") -> None:
        self.cluster = FakeCluster()
        self.ca = ca
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.cluster, self._server.token = self.cluster, token
        cert = ca.issue_cert("127.0.0.1")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(
        self,
        path: Path,
        *,
        token: str | None = None,
        server: str | None = None,
        context: str = "fake",
        ca: trustme.CA | None = None,
    ) -> Path:
        """A kubeconfig whose current context is `context`, for this server (or `server`)."""
        ca_pem = (ca or self.ca).cert_pem.bytes()
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake-cluster",
                    "cluster": {
                        "server": server or self.url,
                        "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": "fake-user", "user": {"token": token or self._server.token}}],
            "contexts": [
                {"name": context, "context": {"cluster": "fake-cluster", "user": "fake-user"}}
            ],
            "current-context": context,
        }
        path.write_text(json.dumps(cfg, indent=2))
        return path
