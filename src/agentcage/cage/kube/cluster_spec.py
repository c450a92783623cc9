"""The cage as the unit model builds it (quadlet.py's `CageSpec`), with a cluster's addresses.

On a cluster the agent reaches its DNS and proxy at the fixed ClusterIPs of their Services
(`kubernetes.dns_service_ip`, `proxy_service_ip`), the images come from a registry
(`kubernetes.images`), and what only a Podman host has (host paths, Podman volumes and
secrets) is refused here, before any manifest is written (manifests.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentcage.cage.kube.object_names import KubeNames
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec
from agentcage.cage.topology import Topology
from agentcage.config.schema import CageConfig
from agentcage.errors import ConfigError

# The quadlet model wants host paths; on a cluster nothing is mounted from a host.
_DNS_LABEL_MAX = 63  # Service and container names
_NO_HOST = HostPaths.under(Path("/nonexistent"))


@dataclass(frozen=True)
class ServiceTopology(Topology):
    """A cage's addresses on a cluster: its Services' fixed ClusterIPs."""

    dns_service_ip: str = ""
    proxy_service_ip: str = ""

    @property
    def dns_ip(self) -> str:
        return self.dns_service_ip

    @property
    def proxy_ip(self) -> str:
        return self.proxy_service_ip


def kube_images(config: CageConfig) -> Images:
    """The image references the cluster pulls (`kubernetes.images`)."""
    images = config.kubernetes.images
    missing = [role for role in ("proxy", "dns") if getattr(images, role) is None]
    if missing:
        raise ConfigError(
            f"kubernetes.images.{missing[0]} is not set: a cluster pulls the sidecar images "
            "from a registry",
            hint="push the images `agentcage cage create` builds to a registry the cluster "
            "reads and set kubernetes.images.proxy and .dns (docs/kubernetes.md)",
        )
    agent = images.agent or config.container.image
    if agent is None:
        raise ConfigError(
            "kubernetes.images.agent is not set and container.image names no image",
            hint="push the agent's image to a registry and set kubernetes.images.agent",
        )
    assert images.proxy is not None and images.dns is not None
    return Images(proxy=images.proxy, dns=images.dns, agent=agent)


def cage_spec(
    config: CageConfig, images: Images, canary_seed: str | None = None, upstream_ca: bool = False
) -> CageSpec:
    """The cage as quadlet.py models it, with the cluster's addresses; refuses what a
    cluster cannot do the same way."""
    kube = config.kubernetes
    if kube.dns_service_ip is None or kube.proxy_service_ip is None:
        raise ConfigError(
            "kubernetes.dns_service_ip and kubernetes.proxy_service_ip must be set",
            hint="pick two free addresses of your cluster's Service range "
            f"(kubernetes.service_cidr, now {kube.service_cidr}); the agent's resolver and "
            "proxy settings are addresses fixed when the manifests are written "
            "(docs/kubernetes.md)",
        )
    if len(names_of(config).workload("proxy")) > _DNS_LABEL_MAX:
        raise ConfigError(
            f"cage name {config.name!r} is too long for Kubernetes object names",
            hint=f"use a name of at most {_DNS_LABEL_MAX - len('agentcage--proxy')} characters",
        )
    ctr = config.container
    refused = [
        (ctr.bind_mounts, "container.volumes with host paths", "a cluster node's files"),
        (ctr.named_volumes, "container.volumes with named volumes", "Podman volumes"),
        (ctr.podman_secrets, "container.podman_secrets", "Podman secrets"),
    ]
    for present, key, what in refused:
        if present:
            raise ConfigError(
                f"{key}: {what} do not exist on a cluster",
                hint="remove it for `agentcage kube` (docs/kubernetes.md)",
            )
    topology = ServiceTopology(
        config.name,
        0,
        kube.service_cidr,
        kube.service_cidr,
        dns_service_ip=kube.dns_service_ip,
        proxy_service_ip=kube.proxy_service_ip,
    )
    secret_names = tuple(rule.env for rule in config.secret_injection)
    return CageSpec(
        config,
        topology,
        images,
        _NO_HOST,
        secret_names=secret_names,
        canary_seed=canary_seed,
        upstream_ca=upstream_ca,
    )


def names_of(config: CageConfig) -> KubeNames:
    return KubeNames(config.name)
