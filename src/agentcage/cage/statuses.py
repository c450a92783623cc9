"""Whether cages run: `cage list` and `cage status`, in a constant number of calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentcage.cage import layout, observe, running, topology
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.contract import service_name
from agentcage.cage.kube.kube_record import is_kube
from agentcage.cage.running import VM
from agentcage.cage.vm import vm_control
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
        """NAMES (default: every cage), with one systemctl call for all.

        Uptime counts from when systemd last saw the agent's unit become active: the moment
        its container started, without asking Podman too (a process, ~0.2 s here).
        """
        names = self.store.names() if names is None else names
        topos = {name: topology.load(self.store, name) for name in names}
        agents = {
            name: service_name(t, VM if vm_control.is_vm(self.store, name) else "agent")
            for name, t in topos.items()
            if t is not None
        }
        try:
            units = observe.unit_properties(self.host, list(agents.values()))
        except UnreachableError as exc:
            units, error = {}, exc.diagnostics()
        else:
            error = ""
        at = observe.now()
        rows = []
        for name in topos:
            props = units.get(agents.get(name, ""), {})
            if name not in agents:
                # A Kubernetes cage's state is the cluster's: `kube status` asks it.
                state = "kubernetes" if is_kube(self.store, name) else "unknown"
            else:
                state = props.get("ActiveState", "unknown") if not error else "unreachable"
            started = observe.active_since(props) if state == "active" else None
            rows.append(
                CageStatus(
                    name,
                    state,
                    observe.rfc3339(started) if started is not None else None,
                    max(0.0, (at - started).total_seconds()) if started is not None else None,
                    layout.count_blocked(self.store, name),
                    error if name in agents else "",
                )
            )
        return rows

    def is_running(self, name: str) -> bool:
        topo = topology.load(self.store, name)
        if topo is None:
            return False
        role = VM if vm_control.is_vm(self.store, name) else "agent"
        return running.unit_state(self.host, service_name(topo, role)) == "active"
