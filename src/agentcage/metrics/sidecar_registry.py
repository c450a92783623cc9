"""What every sidecar serves for `cage status`, declared once for the proxy and the DNS sidecar."""

from __future__ import annotations

from typing import Literal

from prometheus_client.metrics import Info
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from agentcage.metrics import metric_names
from agentcage.metrics.recent import RecentVerdicts


class SidecarRegistry:
    """A registry with process metrics, last-hour verdicts and the policy version in force.

    The role's own counters register on `self.registry` after this.
    """

    def __init__(self, role: Literal["proxy", "dns"], decisions: str) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.recent = RecentVerdicts(
            metric_names.LAST_HOUR[role],
            f"{decisions} of the last hour (to the minute), by verdict.",
            self.registry,
        )
        self.policy = Info(
            metric_names.POLICY[role],
            "The policy in force: `version` is a hash of the config file loaded.",
            registry=self.registry,
        )
