"""One cage container, as quadlet.py models it, read into a Kubernetes pod spec.

The input is a `.container` unit of `build_units` (the same model the quadlet files and
the plain systemd services are rendered from); the output is a pod spec holding that one
container. Each quadlet key maps to the pod's closest equivalent:

* `User`/`Group`, `ReadOnly`, `DropCapability`, `NoNewPrivileges` -> the container's
  securityContext, with seccomp RuntimeDefault and runAsNonRoot (the restricted profile);
* `Volume` -> the volume the caller planned for that path inside the container (the host
  paths of the quadlet model mean nothing on a cluster); a path without a plan is refused;
* `Tmpfs` -> an in-memory emptyDir; `Sysctl` -> the pod's sysctls; `DNS` -> the pod's only
  nameserver (`dnsPolicy: None`); `PodmanArgs --memory/--cpus` -> resource limits
  (its `--pidfile`, for the units' steering, is dropped);
* `Exec` -> `args` (it replaces the image's command, not its entrypoint), `Entrypoint` ->
  `command`; `Environment` -> `env`; `Label` -> the pod's labels.

What a pod has no field for is left to the cluster: `PidsLimit` (the kubelet's
`podPidsLimit`), `RunInit`, health checks (the caller sets TCP probes), `Notify`, restart
and the networks (NetworkPolicies stand for them). As in service_units.py, a key this
module does not know is refused, so a new key in quadlet.py cannot be dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentcage.cage.unit import Entry, RenderError, UnitFile

RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
_SIZE = re.compile(r"(?:^|,)size=([0-9]+)([kmg]?)(?:,|$)")
_VOLUME_NAME = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Mount:
    """What backs one path inside the container: a pod volume source, read-only or not."""

    name: str
    source: Mapping[str, Any]
    read_only: bool
    at: str | None = None  # mount here instead (a directory holding the file asked for)


@dataclass
class PodParts:
    """The pieces of a pod spec read from one container unit."""

    origin: str
    mounts: Mapping[str, Mount]  # container path -> what backs it
    name: str = ""
    image: str = ""
    args: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    security: dict[str, Any] = field(default_factory=dict)
    capabilities_drop: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    nameservers: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # the `Secret=` entries, unread

    def read(self, entry: Entry) -> None:
        handler = _KEYS.get(entry.key)
        if handler is None:
            raise RenderError(
                f"{self.origin}: [Container] {entry.key}= has no Kubernetes rendering "
                "(cage/kube/pods.py must learn it)"
            )
        handler(self, entry)

    def mount(self, path: str, read_only: bool | None = None) -> None:
        plan = self.mounts.get(path)
        if plan is None:
            raise RenderError(
                f"{self.origin}: nothing on a cluster can back {path}",
                hint="host directories and Podman volumes do not exist on a cluster; "
                "remove them from container.volumes for `agentcage kube` (docs/kubernetes.md)",
            )
        self.volumes[plan.name] = plan.source
        ro = plan.read_only if read_only is None else read_only
        at = plan.at or path
        self.volume_mounts.append({"name": plan.name, "mountPath": at, "readOnly": ro})

    def container(self) -> dict[str, Any]:
        if not self.name or not self.image:
            raise RenderError(f"{self.origin}: needs Image= and ContainerName=")
        context: dict[str, Any] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": self.capabilities_drop},
            "runAsNonRoot": True,
            "seccompProfile": dict(RUNTIME_DEFAULT),
            **self.security,
        }
        if context.get("allowPrivilegeEscalation") is not False or self.capabilities_drop != [
            "ALL"
        ]:
            raise RenderError(
                f"{self.origin}: a cage pod drops every capability and forbids privilege "
                "escalation (the restricted profile)",
                hint="keep container.drop_capabilities: ALL and no_new_privileges: true",
            )
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "securityContext": context,
            "env": [{"name": k, "value": v} for k, v in sorted(self.env.items())],
            "volumeMounts": sorted(self.volume_mounts, key=lambda m: m["mountPath"]),
        }
        if self.command:
            out["command"] = self.command
        if self.args:
            out["args"] = self.args
        if self.limits:
            out["resources"] = {"limits": dict(self.limits), "requests": dict(self.limits)}
        return out

    def pod_spec(self) -> dict[str, Any]:
        """The pod spec of this one container (without restart policy or probes)."""
        spec: dict[str, Any] = {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,  # no other Service's address in the env
            "containers": [self.container()],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": dict(RUNTIME_DEFAULT)},
            "volumes": [{"name": n, **dict(s)} for n, s in sorted(self.volumes.items())],
        }
        if self.sysctls:
            spec["securityContext"]["sysctls"] = [
                {"name": k, "value": v} for k, v in sorted(self.sysctls.items())
            ]
        if self.nameservers:
            spec["dnsPolicy"] = "None"
            spec["dnsConfig"] = {"nameservers": list(self.nameservers)}
        return spec


def read_container(origin: str, unit: UnitFile, mounts: Mapping[str, Mount]) -> PodParts:
    parts = PodParts(origin, mounts)
    for entry in unit.sections.get("Container", []):
        parts.read(entry)
    return parts


def _text(parts: PodParts, entry: Entry) -> str:
    if not isinstance(entry.value, str):
        raise RenderError(f"{parts.origin}: {entry.key} takes one value")
    return entry.value


def _words(parts: PodParts, entry: Entry) -> tuple[str, ...]:
    if not isinstance(entry.value, tuple):
        raise RenderError(f"{parts.origin}: {entry.key} takes a list of words")
    return entry.value


def _ignored(parts: PodParts, entry: Entry) -> None:
    """A key whose job the cluster does another way (see the module docstring)."""


def _name(parts: PodParts, entry: Entry) -> None:
    parts.name = _text(parts, entry)


def _image(parts: PodParts, entry: Entry) -> None:
    parts.image = _text(parts, entry)


def _user(parts: PodParts, entry: Entry) -> None:
    uid = _text(parts, entry)
    if not uid.isdigit() or int(uid) == 0:
        raise RenderError(
            f"{parts.origin}: User={uid}: a cage pod runs as a numeric, non-root uid",
            hint="set container.user to `UID[:GID]` with UID > 0 (docs/kubernetes.md)",
        )
    parts.security["runAsUser"] = int(uid)


def _group(parts: PodParts, entry: Entry) -> None:
    gid = _text(parts, entry)
    if not gid.isdigit():
        raise RenderError(f"{parts.origin}: Group={gid}: a pod takes a numeric gid")
    parts.security["runAsGroup"] = int(gid)


def _read_only(parts: PodParts, entry: Entry) -> None:
    parts.security["readOnlyRootFilesystem"] = _text(parts, entry) == "true"


def _no_new_privileges(parts: PodParts, entry: Entry) -> None:
    parts.security["allowPrivilegeEscalation"] = _text(parts, entry) != "true"


def _drop(parts: PodParts, entry: Entry) -> None:
    parts.capabilities_drop.append(_text(parts, entry).upper())


def _add(parts: PodParts, entry: Entry) -> None:
    raise RenderError(
        f"{parts.origin}: AddCapability={_text(parts, entry)}: a cage pod adds no capability",
        hint="remove container.add_capabilities for `agentcage kube`",
    )


# The proxy's "never forward" guards the default route the units' steering (nsenter)
# gives the agent (docs/transparent.md); a pod gets no such route (NetworkPolicies stand
# for the networks), and Kubernetes counts the sysctl unsafe.
_UNITS_ONLY_SYSCTLS = frozenset({"net.ipv4.ip_forward"})


def _sysctl(parts: PodParts, entry: Entry) -> None:
    key, _, value = _text(parts, entry).partition("=")
    if key not in _UNITS_ONLY_SYSCTLS:
        parts.sysctls[key] = value


def _dns(parts: PodParts, entry: Entry) -> None:
    parts.nameservers.append(_text(parts, entry))


def _tmpfs(parts: PodParts, entry: Entry) -> None:
    path, _, options = _text(parts, entry).partition(":")
    source: dict[str, Any] = {"medium": "Memory"}
    size = _SIZE.search(options.lower())
    if size:
        source["sizeLimit"] = (
            f"{size.group(1)}{size.group(2).upper() + 'i' if size.group(2) else ''}"
        )
    name = "tmpfs-" + _VOLUME_NAME.sub("-", path.lower()).strip("-")
    parts.volumes[name] = {"emptyDir": source}
    parts.volume_mounts.append({"name": name, "mountPath": path, "readOnly": False})


def _volume(parts: PodParts, entry: Entry) -> None:
    _source, _, rest = _text(parts, entry).partition(":")
    path, _, options = rest.partition(":")
    parts.mount(path, "ro" in options.split(",") or None)


def _environment(parts: PodParts, entry: Entry) -> None:
    for word in _words(parts, entry):
        key, _, value = word.partition("=")
        parts.env[key] = value


def _labels(parts: PodParts, entry: Entry) -> None:
    for word in _words(parts, entry):
        key, _, value = word.partition("=")
        parts.labels[key] = value


def _exec(parts: PodParts, entry: Entry) -> None:
    parts.args = list(_words(parts, entry))


def _entrypoint(parts: PodParts, entry: Entry) -> None:
    parts.command = [_text(parts, entry)]


def _secret(parts: PodParts, entry: Entry) -> None:
    parts.secrets.append(_text(parts, entry))


def _podman_args(parts: PodParts, entry: Entry) -> None:
    for word in _words(parts, entry):
        flag, _, value = word.partition("=")
        if flag == "--memory":
            parts.limits["memory"] = _quantity(value)
        elif flag == "--cpus":
            parts.limits["cpu"] = value
        elif flag != "--pidfile":  # the units' steering reads it; a pod has no use for it
            raise RenderError(f"{parts.origin}: PodmanArgs {word} has no Kubernetes rendering")


def _quantity(memory: str) -> str:
    """Podman's `512m` (binary units) as a Kubernetes quantity (`512Mi`)."""
    number, unit = memory[:-1], memory[-1:].lower()
    if unit in "kmg" and number.isdigit():
        return f"{number}{unit.upper()}i"
    return memory


_KEYS: dict[str, Callable[[PodParts, Entry], None]] = {
    "Image": _image,
    "ContainerName": _name,
    "User": _user,
    "Group": _group,
    "ReadOnly": _read_only,
    "NoNewPrivileges": _no_new_privileges,
    "DropCapability": _drop,
    "AddCapability": _add,
    "Sysctl": _sysctl,
    "DNS": _dns,
    "Tmpfs": _tmpfs,
    "Volume": _volume,
    "Environment": _environment,
    "Label": _labels,
    "Exec": _exec,
    "Entrypoint": _entrypoint,
    "Secret": _secret,
    "PodmanArgs": _podman_args,
    "Pull": _ignored,
    "PidsLimit": _ignored,
    "RunInit": _ignored,
    "SecurityLabelDisable": _ignored,
    "Network": _ignored,
    "Notify": _ignored,
    "HealthCmd": _ignored,
    "HealthInterval": _ignored,
    "CgroupsMode": _ignored,
}
