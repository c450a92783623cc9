"""The NetworkPolicies that stand, on a cluster, for the cage's two Podman networks.

On Podman the agent sits on an internal network with no route out; on a cluster every
pod can reach every other pod and the internet unless a NetworkPolicy says otherwise. So:

* every pod of the cage is selected by a policy with no rules (deny all, both ways);
* the agent may reach only its proxy's and resolver's pods, on their ports; it accepts
  connections only on `container.ports`;
* the proxy accepts only the agent; it may reach the internet but none of
  `kubernetes.cluster_cidrs` (pods, Services, nodes, the metadata address), and the
  cluster's resolver for the names it connects to;
* the DNS sidecar accepts only the agent; it may reach the cluster's resolver and port 53
  outside the cluster ranges (`dns_servers`).

Policies are only as good as the network plugin that enforces them (docs/kubernetes.md).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from agentcage.cage.kube.object_names import KubeNames
from agentcage.cage.topology import DNS_PORT
from agentcage.config.schema import CageConfig

# The cluster's own resolver, which the sidecars (never the agent) ask for upstream names.
CLUSTER_DNS: dict[str, Any] = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
# Cloud metadata services: always excepted, whatever `cluster_cidrs` says.
METADATA = ("169.254.169.254/32", "fd00:ec2::254/128")
DNS_PORTS = [{"port": DNS_PORT, "protocol": "UDP"}, {"port": DNS_PORT, "protocol": "TCP"}]


def network_policies(
    config: CageConfig, names: KubeNames, namespace: str, proxy_ports: list[int]
) -> list[dict[str, Any]]:
    agent, proxy, dns = ({"matchLabels": names.labels(role)} for role in ("agent", "proxy", "dns"))
    tcp = [{"port": port, "protocol": "TCP"} for port in proxy_ports]
    internet = _internet(config.kubernetes.cluster_cidrs)
    declared = sorted({m.container for m in config.container.port_mappings})
    agent_ingress = [{"ports": [{"port": p, "protocol": "TCP"} for p in declared]}]
    return [
        _policy(names.default_deny, namespace, names, {"matchLabels": names.labels()}, [], []),
        _policy(
            names.policy("agent"),
            namespace,
            names,
            agent,
            ingress=agent_ingress if declared else [],
            egress=[
                {"to": [{"podSelector": proxy}], "ports": tcp},
                {"to": [{"podSelector": dns}], "ports": DNS_PORTS},
            ],
        ),
        _policy(
            names.policy("proxy"),
            namespace,
            names,
            proxy,
            ingress=[{"from": [{"podSelector": agent}], "ports": tcp}],
            egress=[{"to": internet}, {"to": [CLUSTER_DNS], "ports": DNS_PORTS}],
        ),
        _policy(
            names.policy("dns"),
            namespace,
            names,
            dns,
            ingress=[{"from": [{"podSelector": agent}], "ports": DNS_PORTS}],
            egress=[
                {"to": [CLUSTER_DNS], "ports": DNS_PORTS},
                {"to": internet, "ports": DNS_PORTS},
            ],
        ),
    ]


def _internet(cluster_cidrs: list[str]) -> list[dict[str, Any]]:
    """Everything but the cluster's ranges, per address family."""
    networks = [ipaddress.ip_network(c) for c in cluster_cidrs]
    for address in METADATA:
        metadata = ipaddress.ip_network(address)
        if not any(
            n.version == metadata.version and metadata.subnet_of(n)  # type: ignore[arg-type]
            for n in networks
        ):
            networks.append(metadata)
    blocks = []
    for version, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        excepted = sorted(str(n) for n in networks if n.version == version)
        block: dict[str, Any] = {"cidr": everything}
        if excepted:
            block["except"] = excepted
        blocks.append({"ipBlock": block})
    return blocks


def _policy(
    name: str,
    namespace: str,
    names: KubeNames,
    selector: dict[str, Any],
    ingress: list[dict[str, Any]],
    egress: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": names.labels()},
        "spec": {
            "podSelector": selector,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }
