"""Whether cages run: `cage list` and `cage status`, in a constant number of calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentcage.cage import layout, observe, running, topology
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.contract import service_name
from agentcage.cage.kube.kube_record import is_kube
from agentcage.errors import UnreachableError


@dataclass(frozen=True)
class CageStatus:
    name: str
    state: str  # systemd's ActiveState of the agent unit, "unreachable", or "kubernetes"
    started_at: str | None  # RFC 3339, while the agent runs
    uptime_s: float | None
    blocked: int
    error: str = ""  # why the state is "unreachable"


class CageStatuses(CageParts):
    def status(self, name: str) -> CageStatus:
        (row,) = self.statuses([name])
        return row

    def statuses(self, names: Sequence[str] | None = None) -> list[CageStatus]:
        """NAMES (default: every cage), with one systemctl and one podman call for all."""
        names = self.store.names() if names is None else names
        topos = {name: topology.load(self.store, name) for name in names}
        agents = {name: service_name(t, "agent") for name, t in topos.items() if t is not None}
        try:
            units = observe.unit_properties(self.host, list(agents.values()))
        except UnreachableError as exc:
            units, error = {}, exc.diagnostics()
        else:
            error = ""
        states = {
            name: units.get(unit, {}).get("ActiveState", "unknown") if not error else "unreachable"
            for name, unit in agents.items()
        }
        running = [t.container("agent") for n, t in topos.items() if t and states[n] == "active"]
        containers = observe.container_facts(self.host, running)
        at = observe.now()
        rows = []
        for name, topo in topos.items():
            # A Kubernetes cage's state is the cluster's: `kube status` asks it.
            state = states.get(name, "kubernetes" if is_kube(self.store, name) else "unknown")
            facts = containers.get(topo.container("agent")) if topo and state == "active" else None
            started = facts.started_at if facts is not None else None
            rows.append(
                CageStatus(
                    name,
                    state,
                    observe.rfc3339(started) if started is not None else None,
                    facts.uptime_s(at) if facts is not None else None,
                    layout.count_blocked(self.store, name),
                    error if name in agents else "",
                )
            )
        return rows

    def is_running(self, name: str) -> bool:
        topo = topology.load(self.store, name)
        if topo is None:
            return False
        return running.unit_state(self.host, service_name(topo, "agent")) == "active"
