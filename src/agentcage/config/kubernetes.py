"""The `kubernetes:` section: what a cluster needs that a Podman host does not.

Only `agentcage kube` reads it (docs/kubernetes.md). A cluster pulls images from a
registry, so the proxy and DNS images are references, not local builds; the agent's and
resolver's Services get fixed ClusterIPs because the agent's resolver and proxy settings
are addresses that must be known when the manifests are written (its own resolver, not
the cluster's, answers its names, so it cannot look a Service name up).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agentcage.config.base import Model
from agentcage.config.fields import Text

# RFC 1918, carrier-grade NAT and link-local (the metadata address 169.254.169.254 is in
# it): where pods, Services and nodes live in almost every cluster.
DEFAULT_CLUSTER_CIDRS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
)
DEFAULT_CLUSTER_CIDRS6 = ("fc00::/7", "fe80::/10")
DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class KubernetesImages(Model):
    """Image references the cluster pulls."""

    proxy: Text | None = Field(
        None, description="The proxy image (`agentcage proxy run` entrypoint), from a registry."
    )
    dns: Text | None = Field(
        None, description="The DNS sidecar image (`agentcage dns run` entrypoint)."
    )
    agent: Text | None = Field(None, description="The agent's image; default: `container.image`.")


class KubernetesConfig(Model):
    """How `agentcage kube` deploys the cage to a cluster (docs/kubernetes.md)."""

    namespace: str = Field(
        "agentcage",
        pattern=DNS_LABEL,
        description="Namespace of the cage's objects unless `kube --namespace` says otherwise.",
    )
    images: KubernetesImages = Field(
        default_factory=KubernetesImages, description="Image references the cluster pulls."
    )
    agent_kind: Literal["Deployment", "Job", "Pod"] = Field(
        "Deployment",
        description="What runs the agent: a `Deployment` (restarted, one replica), a `Job` "
        "(runs to completion) or a bare `Pod`.",
    )
    dns_service_ip: Text | None = Field(
        None,
        description="Fixed ClusterIP of the cage's DNS Service, a free address of "
        "`service_cidr`: the agent's pod lists it as its only nameserver.",
    )
    proxy_service_ip: Text | None = Field(
        None,
        description="Fixed ClusterIP of the cage's proxy Service, a free address of "
        "`service_cidr`: the agent's proxy settings and the DNS answers point at it.",
    )
    audit_claim: Text | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="A PersistentVolumeClaim in the cage's namespace that the proxy and DNS "
        "sidecar write their audit logs to (`proxy.jsonl`, `dns.jsonl`, rotated as on "
        "Podman) instead of stdout. ReadWriteMany unless both pods share a node; "
        "writable by group 10000 (the pods' fsGroup).",
    )
    service_cidr: Text = Field(
        "10.96.0.0/12",
        description="The cluster's Service range (kube-apiserver `--service-cluster-ip-range`).",
    )
    cluster_cidrs: list[Text] = Field(
        default_factory=lambda: list(DEFAULT_CLUSTER_CIDRS + DEFAULT_CLUSTER_CIDRS6),
        description="Ranges the proxy may never connect to: pods, Services, nodes and the "
        "metadata address. The default covers RFC 1918, 100.64.0.0/10, link-local and "
        "IPv6 ULA; list your cluster's own if they lie elsewhere.",
    )

    @field_validator("service_cidr", mode="after")
    @classmethod
    def _service_cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 network (e.g. 10.96.0.0/12)") from exc
        return str(network)

    @field_validator("cluster_cidrs", mode="after")
    @classmethod
    def _cluster_cidrs(cls, value: list[str]) -> list[str]:
        out = []
        for cidr in value:
            try:
                network = ipaddress.ip_network(cidr)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a network (e.g. 10.0.0.0/8)") from exc
            if network.prefixlen == 0:
                raise ValueError(f"{cidr!r} is the whole internet; the proxy needs a way out")
            out.append(str(network))
        return out

    @field_validator("dns_service_ip", "proxy_service_ip", mode="after")
    @classmethod
    def _ipv4(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 address") from exc

    @model_validator(mode="after")
    def _service_ips(self) -> KubernetesConfig:
        network = ipaddress.IPv4Network(self.service_cidr)
        given = [ip for ip in (self.dns_service_ip, self.proxy_service_ip) if ip is not None]
        for ip in given:
            address = ipaddress.IPv4Address(ip)
            if address not in network or address in (
                network.network_address,
                network.broadcast_address,
            ):
                raise ValueError(f"{ip} is not a usable address of service_cidr {network}")
        if len(given) == 2 and given[0] == given[1]:
            raise ValueError("dns_service_ip and proxy_service_ip must differ")
        return self
