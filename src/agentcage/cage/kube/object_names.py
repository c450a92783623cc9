"""The names of one cage's Kubernetes objects, and the labels that select its pods.

`kube apply`, `delete`, `status`, `secret set` and `domain add` find the objects by these
names, and the NetworkPolicies select pods by these labels (the same `agentcage.cage` and
`agentcage.role` labels quadlet.py puts on the cage's containers).
"""

from __future__ import annotations

from dataclasses import dataclass

from agentcage.cage.topology import prefix

CAGE_LABEL = "agentcage.cage"
ROLE_LABEL = "agentcage.role"
ROLES = ("proxy", "dns", "agent")


@dataclass(frozen=True)
class KubeNames:
    cage: str

    def workload(self, role: str) -> str:
        """The Deployment, Job or Pod of `role`, and for the sidecars its Service."""
        return f"{prefix(self.cage)}-{role}"

    def policy(self, role: str) -> str:
        return f"{prefix(self.cage)}-{role}"

    @property
    def default_deny(self) -> str:
        return f"{prefix(self.cage)}-default-deny"

    @property
    def config(self) -> str:
        """ConfigMap: the sidecars' config file (policy, never a secret value)."""
        return f"{prefix(self.cage)}-config"

    @property
    def ca_cert(self) -> str:
        """ConfigMap: the CA certificate, mounted into the agent."""
        return f"{prefix(self.cage)}-ca-cert"

    @property
    def ca(self) -> str:
        """Secret: the CA key and certificate, mounted into the proxy only."""
        return f"{prefix(self.cage)}-ca"

    @property
    def secrets(self) -> str:
        """Secret: the real values of `secret_injection`, mounted into the proxy only."""
        return f"{prefix(self.cage)}-secrets"

    @property
    def fingerprints(self) -> str:
        """Secret: keyed fingerprints of the protected values, mounted into the DNS pod only."""
        return f"{prefix(self.cage)}-fingerprints"

    @property
    def upstream_ca(self) -> str:
        """ConfigMap: extra CAs the proxy trusts for upstream servers (optional)."""
        return f"{prefix(self.cage)}-upstream-ca"

    def labels(self, role: str | None = None) -> dict[str, str]:
        found = {CAGE_LABEL: self.cage}
        if role is not None:
            found[ROLE_LABEL] = role
        return found
