"""`agentcage kube render`: one cage's Kubernetes objects, from the cage's own unit model.

The cage is first built as quadlet.py builds it for Podman (`build_units`), with the
addresses the agent will use on the cluster: the fixed ClusterIPs of its DNS and proxy
Services (`kubernetes.dns_service_ip`, `proxy_service_ip`; cluster_spec.py). Each
container unit is then read into a pod (pods.py), so roles, command lines, environment
and hardening have one source. What changes on a cluster:

* the proxy and the DNS sidecar each get a Deployment and a Service; they listen on the
  pod's addresses (`0.0.0.0`), and their audit lines go to stdout for the cluster's log
  pipeline instead of a host directory;
* the agent runs as a Deployment, a Job or a bare Pod (`kubernetes.agent_kind`), with the
  DNS Service as its only nameserver;
* files the Podman cage mounts from the host come from ConfigMaps and Secrets: the
  sidecars' config (a ConfigMap rendered here), the CA key and the real secret values
  (Secrets mounted into the proxy only), the CA certificate (a ConfigMap for the agent),
  the protected values' fingerprints (a Secret for the DNS pod). Those holding key
  material are not rendered here (material.py makes them for `kube apply`): the output
  can be committed and reviewed;
* NetworkPolicies stand for the two Podman networks (policies.py).

Output is plain dicts in a fixed order; `to_yaml` (manifest_yaml.py) writes them with
sorted keys.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from agentcage.cage.contract import (
    AGENT_CA,
    AUDIT_DIR,
    CA_DIR,
    CANARY_SEED_ENV,
    CONFIG_DIR,
    FINGERPRINTS_DIR,
    METRICS_DIR,
    SECRETS_DIR,
    SIDECAR_CONFIG_NAME,
    UPSTREAM_CA,
)
from agentcage.cage.kube.cluster_spec import cage_spec, kube_images, names_of
from agentcage.cage.kube.object_names import KubeNames
from agentcage.cage.kube.pods import Mount, PodParts, read_container
from agentcage.cage.kube.policies import network_policies
from agentcage.cage.layout import Images, sidecar_config
from agentcage.cage.quadlet import build_units
from agentcage.cage.run_options import (
    AUDIT_LOG_OPTION,
    DENY_FLOWS_OPTION,
    LISTEN_OPTION,
    TRANSPARENT_OPTION,
)
from agentcage.cage.topology import DNS_PORT, PROXY_PORT
from agentcage.cage.unit import RenderError
from agentcage.config.kubernetes import DNS_LABEL
from agentcage.config.schema import CageConfig
from agentcage.errors import ConfigError

# Inside a pod the sidecars listen on every address of their own network namespace.
POD_ADDRESS = "0.0.0.0"
# Secret and ConfigMap files are readable by every user of the pod, which is one container
# (so no fsGroup is needed, which Podman's `kube play` would ignore anyway).
_READ_ONLY_FILE = 0o444
CA_CERT_KEY = "ca.pem"  # the CA certificate's key in the agent's ConfigMap
UPSTREAM_CA_KEY = "ca.pem"  # the bundle's key in the upstream-CA ConfigMap


def render_manifests(
    config: CageConfig,
    *,
    namespace: str | None = None,
    images: Images | None = None,
    canary_seed: str | None = None,
    upstream_ca: bool = False,
) -> list[dict[str, Any]]:
    """The cage's objects, in apply order: config, sidecars, agent, policies.

    `namespace` defaults to `kubernetes.namespace`, `images` to `kubernetes.images`.
    `canary_seed` (the cage's decoy seed) fixes the decoys in the agent's env; the proxy
    reads it from the secrets Secret, never from its manifest. `upstream_ca`: the proxy
    also trusts the CAs in the cage's upstream-CA ConfigMap.
    """
    ns = namespace or config.kubernetes.namespace
    if not re.fullmatch(DNS_LABEL, ns):
        raise ConfigError(
            f"namespace {ns!r} is not a Kubernetes namespace name",
            hint="lower-case letters, digits and '-', at most 63 characters",
        )
    chosen = images or kube_images(config)
    spec = cage_spec(config, chosen, canary_seed, upstream_ca)
    names = names_of(config)
    units = build_units(spec).files
    prefix = spec.topology.prefix
    claim = config.kubernetes.audit_claim
    pods = {
        role: read_container(name, units[name], _mounts(role, names, claim))
        for role in ("proxy", "dns", "agent")
        for name in [f"{prefix}-{role}.container"]
    }
    proxy_ports = [PROXY_PORT, *config.network.listener_ports()]
    dns = _sidecar(pods["dns"], names, claim, DNS_PORT, ("UDP", "TCP"))
    return [
        _config_map(names, ns, config, chosen.agent),
        _deployment(names, ns, "proxy", _sidecar(pods["proxy"], names, claim, PROXY_PORT)),
        _service(names, ns, "proxy", config.kubernetes.proxy_service_ip, _tcp(proxy_ports)),
        _deployment(names, ns, "dns", dns),
        _service(names, ns, "dns", config.kubernetes.dns_service_ip, _dns_ports()),
        _agent(names, ns, config, pods["agent"]),
        *network_policies(config, names, ns, proxy_ports),
    ]


def _mounts(role: str, names: KubeNames, claim: str | None) -> dict[str, Mount]:
    """What backs each path the cage's units mount, per role."""
    scratch: dict[str, Any] = {"emptyDir": {}}
    audit = {"persistentVolumeClaim": {"claimName": claim}} if claim else scratch
    if role == "agent":
        item = {"key": CA_CERT_KEY, "path": posixpath.basename(AGENT_CA)}
        ca = {"configMap": {"name": names.ca_cert, "items": [item], "defaultMode": _READ_ONLY_FILE}}
        return {AGENT_CA: Mount("agent-ca", ca, True, at=posixpath.dirname(AGENT_CA))}
    config = {"configMap": {"name": names.config, "defaultMode": _READ_ONLY_FILE}}
    common = {
        CONFIG_DIR: Mount("config", config, True),
        AUDIT_DIR: Mount("audit", audit, False),
        METRICS_DIR: Mount("metrics", scratch, False),
    }
    if role == "dns":
        fingerprints = {
            "secret": {"secretName": names.fingerprints, "defaultMode": _READ_ONLY_FILE}
        }
        return {**common, FINGERPRINTS_DIR: Mount("fingerprints", fingerprints, True)}
    ca = {"secret": {"secretName": names.ca, "defaultMode": _READ_ONLY_FILE}}
    item = {"key": UPSTREAM_CA_KEY, "path": posixpath.basename(UPSTREAM_CA)}
    upstream = {
        "configMap": {"name": names.upstream_ca, "items": [item], "defaultMode": _READ_ONLY_FILE}
    }
    return {
        **common,
        CA_DIR: Mount("ca", ca, True),
        UPSTREAM_CA: Mount("upstream-ca", upstream, True, at=posixpath.dirname(UPSTREAM_CA)),
        FINGERPRINTS_DIR: Mount("fingerprints", scratch, False),
    }


def _sidecar(
    parts: PodParts,
    names: KubeNames,
    claim: str | None,
    port: int,
    protocols: tuple[str, ...] = ("TCP",),
) -> dict[str, Any]:
    """A sidecar's pod spec: listening on the pod's address, auditing to stdout (or to
    files on the audit claim)."""
    if parts.secrets:
        secrets = {"secret": {"secretName": names.secrets, "defaultMode": _READ_ONLY_FILE}}
        parts.volumes["secrets"] = secrets
        parts.volume_mounts.append({"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True})
    seed = parts.env.pop(CANARY_SEED_ENV, None)
    parts.args = _in_pod(parts.args, keep_audit_log=claim is not None)
    spec = parts.pod_spec()
    if claim is not None:  # a claim's files belong to root unless the pod names a group
        spec["securityContext"]["fsGroup"] = parts.security["runAsGroup"]
    container = spec["containers"][0]
    if seed is not None:
        ref = {"secretKeyRef": {"name": names.secrets, "key": CANARY_SEED_ENV}}
        container["env"] = sorted(
            [*container["env"], {"name": CANARY_SEED_ENV, "valueFrom": ref}],
            key=lambda e: e["name"],
        )
    container["ports"] = [{"containerPort": port, "protocol": p} for p in protocols]
    probe = {"tcpSocket": {"port": port}, "periodSeconds": 10}
    container["readinessProbe"] = dict(probe)
    container["livenessProbe"] = {**probe, "periodSeconds": 60, "failureThreshold": 3}
    return _with_labels(parts, spec)


def _in_pod(args: list[str], keep_audit_log: bool = False) -> list[str]:
    """A sidecar's `run` words for a pod: the pod's address; audit lines to stdout unless
    they go to the audit claim."""
    out: list[str] = []
    words = iter(args)
    for word in words:
        if word == AUDIT_LOG_OPTION and not keep_audit_log:
            next(words)
        elif word == LISTEN_OPTION:
            _host, _, port = next(words).rpartition(":")
            out += [word, f"{POD_ADDRESS}:{port}"]
        elif word == TRANSPARENT_OPTION:
            next(words)
            out += [word, POD_ADDRESS]
        elif word == DENY_FLOWS_OPTION:
            continue  # no steering routes a pod's flows to it (pods.py, _UNITS_ONLY_SYSCTLS)
        else:
            out.append(word)
    return out


def _with_labels(parts: PodParts, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": dict(sorted(parts.labels.items()))}, "spec": spec}


def _config_map(names: KubeNames, ns: str, config: CageConfig, agent_image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": names.config, "namespace": ns, "labels": names.labels()},
        "data": {SIDECAR_CONFIG_NAME: sidecar_config(config, agent_image)},
    }


def _deployment(names: KubeNames, ns: str, role: str, template: dict[str, Any]) -> dict[str, Any]:
    template["spec"]["restartPolicy"] = "Always"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": names.workload(role), "namespace": ns, "labels": names.labels(role)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": names.labels(role)},
            "template": template,
        },
    }


def _tcp(ports: list[int]) -> list[dict[str, Any]]:
    return [
        {"name": "proxy" if p == PROXY_PORT else f"tcp-{p}", "port": p, "protocol": "TCP"}
        for p in ports
    ]


def _dns_ports() -> list[dict[str, Any]]:
    return [
        {"name": "dns", "port": DNS_PORT, "protocol": "UDP"},
        {"name": "dns-tcp", "port": DNS_PORT, "protocol": "TCP"},
    ]


def _service(
    names: KubeNames, ns: str, role: str, ip: str | None, ports: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.workload(role), "namespace": ns, "labels": names.labels(role)},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "selector": names.labels(role),
            "ports": [{**p, "targetPort": p["port"]} for p in ports],
        },
    }


_POD_RESTART = {"no": "Never", "always": "Always"}


def _agent(names: KubeNames, ns: str, config: CageConfig, parts: PodParts) -> dict[str, Any]:
    if parts.secrets:
        raise RenderError("agent: Podman secrets cannot reach a pod")
    ctr = config.container
    spec = parts.pod_spec()
    spec["terminationGracePeriodSeconds"] = ctr.timeout_stop_sec
    declared = sorted({m.container for m in ctr.port_mappings})
    if declared:
        spec["containers"][0]["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in declared]
    template = _with_labels(parts, spec)
    kind = config.kubernetes.agent_kind
    metadata = {"name": names.workload("agent"), "namespace": ns, "labels": names.labels("agent")}
    if kind == "Deployment":
        spec["restartPolicy"] = "Always"
        body = {"replicas": 1, "selector": {"matchLabels": names.labels("agent")}}
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata,
                "spec": {**body, "template": template}}  # fmt: skip
    if kind == "Job":
        spec["restartPolicy"] = "Never" if ctr.restart == "no" else "OnFailure"
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata,
                "spec": {"backoffLimit": 6, "template": template}}  # fmt: skip
    spec["restartPolicy"] = _POD_RESTART.get(ctr.restart, "OnFailure")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {**metadata, **template["metadata"]},
            "spec": spec}  # fmt: skip
