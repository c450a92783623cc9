"""`cage status NAME`: each service's state, health, uptime, restarts and image; the
policy in force; the last hour's decisions; the ways the cage runs weakened.

Three sources, each asked once: systemd (one `systemctl show` for every unit), Podman
(one `podman container inspect` for every container) and the sidecars' metrics
sockets (docs/metrics.md), read on the host without any process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from agentcage.cage import layout, observe, running, topology
from agentcage.cage.contract import SIDECAR_CONFIG_NAME, service_name
from agentcage.cage.lifecycle import Cages
from agentcage.cage.vm import vm_control
from agentcage.cage.weakened import weakened
from agentcage.config import policy_version
from agentcage.errors import AgentcageError
from agentcage.metrics import metric_names
from agentcage.metrics.recent import VERDICTS
from agentcage.metrics.scrape import MetricsUnreachable, scrape_unix

SIDECARS = ("proxy", "dns")


@dataclass(frozen=True)
class ServiceReport:
    role: str  # dns, proxy, agent, ports
    unit: str
    container: str
    state: str  # systemd's ActiveState
    sub_state: str
    health: str | None  # Podman's: healthy, unhealthy, starting; None without a check
    started_at: str | None  # RFC 3339, while the container runs
    uptime_s: float | None
    restarts: int | None  # systemd's NRestarts since the unit was loaded
    image: str | None
    image_digest: str | None
    image_id: str | None


@dataclass(frozen=True)
class SidecarMetrics:
    socket: str
    error: str | None  # why it could not be read; None when it was
    policy_version: str | None  # the one the sidecar loaded
    last_hour: dict[str, int] | None  # verdict -> decisions of the last hour


@dataclass(frozen=True)
class StatusReport:
    name: str
    checked_at: str  # RFC 3339
    state: str  # the agent's ActiveState: the cage's own
    services: tuple[ServiceReport, ...]
    policy_version: str  # of the config deployed; the sidecars should serve the same
    metrics: dict[str, SidecarMetrics]
    weakened: tuple[str, ...]

    @property
    def policy_current(self) -> bool:
        """Every sidecar serves the deployed policy (False while a reload is due)."""
        served = {m.policy_version for m in self.metrics.values()}
        return served == {self.policy_version}

    @property
    def problems(self) -> list[str]:
        """Why the cage is not serving its agent, one line per service; [] when it is.

        Health `starting` is not a problem: with checks minutes apart, a healthy new
        sidecar stays `starting` until its first check.
        """
        found = []
        for s in self.services:
            if s.state != "active":
                found.append(f"{s.role} is {s.state}")
            elif s.health == "unhealthy":
                found.append(f"{s.role} is unhealthy")
        return found

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "checked_at": self.checked_at,
            "state": self.state,
            "healthy": not self.problems,
            "problems": self.problems,
            "services": [asdict(service) for service in self.services],
            "policy": {"version": self.policy_version, "current": self.policy_current},
            "metrics": {role: asdict(m) for role, m in self.metrics.items()},
            "weakened": list(self.weakened),
        }


def report(cages: Cages, name: str) -> StatusReport:
    config, topo = cages.deployed(name)
    vm = config.isolation == "firecracker"
    roles: tuple[str, ...] = running.ROLES
    if vm:
        roles = (running.VM,)
    elif config.container.ports:
        roles = (*running.ROLES, running.PORTS)
    units = observe.unit_properties(cages.host, [service_name(topo, role) for role in roles])
    containers = observe.container_facts(cages.host, [topo.container(role) for role in roles])
    at = observe.now()
    services = tuple(_service(role, topo, units, containers, at) for role in roles)
    if vm and services[0].state == "active":
        services += _guest_services(cages, name, services[0])
    paths = layout.host_paths(cages.store, name)
    return StatusReport(
        name=name,
        checked_at=observe.rfc3339(at),
        state=next(s.state for s in services if s.role in ("agent", running.VM)),
        services=services,
        policy_version=policy_version(paths.sidecar_config_dir / SIDECAR_CONFIG_NAME),
        metrics=_sidecar_metrics(cages, paths.metrics_sockets()),
        weakened=tuple(weakened(cages.host, config, cages.store.path(name))),
    )


def _service(
    role: str,
    topo: topology.Topology,
    units: dict[str, dict[str, str]],
    containers: dict[str, observe.ContainerFacts],
    at: datetime,
) -> ServiceReport:
    unit = service_name(topo, role)
    props = units.get(unit, {})
    facts = containers.get(topo.container(role))
    restarts = props.get("NRestarts", "")
    started = facts.started_at if facts is not None and facts.status == "running" else None
    uptime = facts.uptime_s(at) if facts is not None else None
    return ServiceReport(
        role=role,
        unit=unit,
        container=topo.container(role),
        state=props.get("ActiveState", "unknown"),
        sub_state=props.get("SubState", ""),
        health=(facts.health or None) if facts is not None else None,
        started_at=observe.rfc3339(started) if started is not None else None,
        uptime_s=round(uptime, 1) if uptime is not None else None,
        restarts=int(restarts) if restarts.isdigit() else None,
        image=facts.image if facts is not None else None,
        image_digest=(facts.image_digest or None) if facts is not None else None,
        image_id=(facts.image_id or None) if facts is not None else None,
    )


def _guest_services(cages: Cages, name: str, vm: ServiceReport) -> tuple[ServiceReport, ...]:
    """The roles inside a running microVM, as the guest agent reports them: a role that
    died in the guest leaves the VM's unit active, so it shows here (and in `problems`)."""
    try:
        states = vm_control.guest_roles_now(cages.store, name)
    except AgentcageError as exc:
        states = {role: f"unknown ({exc.message})" for role in running.ROLES}
    return tuple(
        ServiceReport(
            role=role,
            unit=vm.unit,
            container=f"{vm.container} (guest)",
            state=_systemd_words(state),
            sub_state=state,
            health=None,
            started_at=None,
            uptime_s=None,
            restarts=None,
            image=None,
            image_digest=None,
            image_id=None,
        )
        for role, state in states.items()
    )


def _systemd_words(state: str) -> str:
    """A guest role's state (vm_control.role_states) as systemd's ActiveState would say it,
    which `problems` reads: an agent that finished with 0 is `inactive`, as its unit is."""
    if state == "running":
        return "active"
    if state in ("exited 0", "never started"):
        return "inactive"
    return "unknown" if state.startswith("unknown") else "failed"


def _sidecar_metrics(cages: Cages, sockets: dict[str, Path]) -> dict[str, SidecarMetrics]:
    """Each sidecar's metrics; on a remote target through sockets forwarded over SSH."""
    files = cages.host.files
    shown = {role: str(files.target_path(sockets[role])) for role in SIDECARS}
    try:
        with files.reach_sockets([sockets[role] for role in SIDECARS]) as reached:
            return {role: _metrics(role, shown[role], reached[sockets[role]]) for role in SIDECARS}
    except AgentcageError as exc:  # the target went away: each sidecar says so
        return {role: SidecarMetrics(shown[role], exc.message, None, None) for role in SIDECARS}


def _metrics(role: str, socket: str, reached: Path | None) -> SidecarMetrics:
    """`socket` as the sidecar's host sees it; `reached`, where it answers here."""
    if reached is None:
        return SidecarMetrics(socket, f"no metrics socket at {socket}", None, None)
    try:
        samples = scrape_unix(reached)
    except MetricsUnreachable as exc:
        message = exc.message.replace(str(reached), socket)
        return SidecarMetrics(socket, message, None, None)
    versions = samples.label_values(f"{metric_names.POLICY[role]}_info", "version")
    counts = {v: int(samples.total(metric_names.LAST_HOUR[role], verdict=v)) for v in VERDICTS}
    return SidecarMetrics(socket, None, versions[0] if versions else None, counts)


def render(status: StatusReport) -> str:
    """The report for people; `--json` gives `as_dict` (docs/operations.md)."""
    lines = [f"cage {status.name}: {status.state} (checked {status.checked_at})", ""]
    lines.append(f"{'SERVICE':<8} {'STATE':<18} {'HEALTH':<10} {'UPTIME':>8} {'RESTARTS':>8}")
    for s in status.services:
        state = f"{s.state}/{s.sub_state}" if s.sub_state else s.state
        uptime = observe.duration(s.uptime_s) if s.uptime_s is not None else "-"
        restarts = str(s.restarts) if s.restarts is not None else "-"
        lines.append(f"{s.role:<8} {state:<18} {s.health or '-':<10} {uptime:>8} {restarts:>8}")
    lines += ["", "images:"]
    for s in status.services:
        lines.append(f"  {s.role:<6} {s.image or '- (no container)'}")
        if s.image_digest:
            lines.append(f"  {'':<6} {s.image_digest}")
    lines += ["", _policy_line(status), "", "last hour:  allowed  flagged  blocked"]
    for role, m in status.metrics.items():
        if m.last_hour is None:
            lines.append(f"  {role:<8} metrics unreadable: {m.error}")
        else:
            counts = m.last_hour
            lines.append(
                f"  {role:<8} {counts['allow']:>8} {counts['flag']:>8} {counts['block']:>8}"
            )
    lines.append("")
    if status.problems:
        lines.append(f"NOT HEALTHY: {'; '.join(status.problems)}")
        lines.append("")
    if status.weakened:
        lines.append("WEAKENED:")
        lines += [f"  - {line}" for line in status.weakened]
    else:
        lines.append("weakened: no; the defaults hold")
    return "\n".join(lines)


def _policy_line(status: StatusReport) -> str:
    deployed = status.policy_version or "unreadable"
    if status.policy_current:
        return f"policy: {deployed}, loaded by {' and '.join(status.metrics)}"
    served = ", ".join(
        f"{role} {m.policy_version or 'unknown'}" for role, m in status.metrics.items()
    )
    line = f"policy: {deployed} deployed; running: {served}"
    if any(m.policy_version for m in status.metrics.values()):
        line += f" (`agentcage cage reload {status.name}` loads it into running sidecars)"
    return line
