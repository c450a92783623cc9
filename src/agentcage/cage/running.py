"""Starting, stopping and restarting a deployed cage, and asking systemd about its units.

The agent's unit `Requires=` and is `After=` both sidecars, so starting it starts them
first (each only counts as started once healthy). Stopping the agent leaves the sidecars
running, so `stop` names every unit. Each action is one systemctl call: systemd orders the
jobs by the units' dependencies.
"""

from __future__ import annotations

from agentcage.cage.contract import service_name
from agentcage.cage.podman import STDERR_TAIL, PodmanHost
from agentcage.cage.topology import Topology
from agentcage.errors import PodmanError, UnreachableError

ROLES = ("dns", "proxy", "agent")  # start order; "ports" follows the agent when published
PORTS = "ports"
# A microVM cage's one container: QEMU, passt and the guest's channel owner (cage/vm).
VM = "vm"


def role_units(topo: Topology, ports: bool) -> list[str]:
    """The cage's container services, sidecars first."""
    roles = (*ROLES, PORTS) if ports else ROLES
    return [service_name(topo, role) for role in roles]


def unit_state(host: PodmanHost, unit: str) -> str:
    """systemd's ActiveState of `unit`: active, inactive, failed, activating, ..."""
    result = host.systemctl("is-active", unit, check=False)
    state = result.stdout.strip()
    if not state:
        tail = result.stderr.strip()[-STDERR_TAIL:] or f"exit {result.returncode}"
        raise UnreachableError(f"systemd did not say whether {unit} runs: {tail}")
    return state


def start(host: PodmanHost, topo: Topology, ports: bool) -> str:
    """Start the agent (and with it the sidecars); returns its ActiveState."""
    extra = [service_name(topo, PORTS)] if ports else []
    host.systemctl("start", service_name(topo, "agent"), *extra)
    return agent_outcome(host, topo)


def restart(host: PodmanHost, topo: Topology, ports: bool) -> str:
    """Restart every container of the cage (sidecars healthy, then the agent)."""
    host.systemctl("restart", *role_units(topo, ports))
    return agent_outcome(host, topo)


def stop(host: PodmanHost, topo: Topology, ports: bool) -> None:
    host.systemctl("stop", *reversed(role_units(topo, ports)))


def agent_outcome(host: PodmanHost, topo: Topology) -> str:
    """The agent's ActiveState right after a start; a failed agent is an error.

    An agent that already finished its work successfully is fine (`inactive`).
    """
    agent = service_name(topo, "agent")
    shown = host.systemctl("show", "--property=ActiveState,Result", agent, check=False).stdout
    props = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    if props.get("Result", "success") != "success" or props.get("ActiveState") == "failed":
        raise PodmanError(
            f"{agent} failed to start ({props.get('Result', 'unknown')})",
            hint=f"`agentcage cage logs {topo.cage}` shows why",
        )
    return props.get("ActiveState", "unknown")


def journal_tail(host: PodmanHost, unit: str, lines: int = 40) -> str:
    """The last lines `unit` wrote, for an error message (empty if none can be read)."""
    scope = ("--user",) if host.rootless else ()
    argv = ["journalctl", *scope, "-u", unit, "-n", str(lines), "-o", "cat", "--no-pager"]
    return host.runner.run(argv, check=False).stdout.strip()
