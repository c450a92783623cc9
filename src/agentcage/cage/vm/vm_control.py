"""The lifecycle of a running microVM cage, through the owner of its guest channel.

The commands that act on a container cage through Podman (`podman kill -HUP`, a restart
of the proxy for a new secret, `podman exec` for `cage verify`, journald for logs) act on
a microVM cage through its control socket (channel_owner.py), and the guest does the
same thing inside (guest_cage.py): SIGHUP to the sidecars with their config copied in
again, the new value into the guest's secrets tmpfs, the network checks in the agent's
namespace, the roles' log files. Starting and stopping is its one `vm` unit.
"""

from __future__ import annotations

import time
from typing import Any

from agentcage.cage import layout
from agentcage.cage.contract import PROXY_AUDIT_LOG
from agentcage.cage.netcheck_audit import FLOWS, audit_records, audited
from agentcage.cage.state import StateStore
from agentcage.cage.topology import Topology
from agentcage.cage.vm.channel_owner import OwnerClient
from agentcage.cage.vm.guest_cage import reload_cage, set_secret, verify_network
from agentcage.cage.vm.guest_roles import ROLES as GUEST_ROLES
from agentcage.cage.vm.vm_plan import VmPlan, load_plan
from agentcage.config.schema import CageConfig
from agentcage.errors import StateError, VmmError

VERIFY_SECONDS = 300.0  # the checks' own Python start under TCG takes most of it
Check = tuple[str, bool, str]


def is_vm(store: StateStore, name: str) -> bool:
    try:
        return store.load_config(name).isolation == "firecracker"
    except StateError:
        return False


def _plan(store: StateStore, name: str) -> VmPlan:
    # Here: vm_cage's imports (the VMM's API client, images, kernels) are for microVM
    # cages, and this module is imported by every `cage` command for `is_vm`.
    from agentcage.cage.vm.vm_cage import run_dir

    try:
        return load_plan(run_dir(store.path(name)))
    except FileNotFoundError:
        raise StateError(
            f"cage {name!r} has no microVM plan", hint=f"`agentcage cage update {name}`"
        ) from None


def guest(store: StateStore, name: str) -> OwnerClient:
    return OwnerClient(_plan(store, name).control)


def reload(store: StateStore, config: CageConfig) -> list[str]:
    """The sidecars' config rendered again on the host, copied into the guest, SIGHUP."""
    layout.write_sidecar_config(store, config, layout.load_images(store, config.name).agent)
    plan = _plan(store, config.name)
    with OwnerClient(plan.control) as client:
        return reload_cage(client.ask, list(plan.roles), plan.state_dir)


def secret(store: StateStore, name: str, secret_name: str, value: str | None) -> None:
    """A new value (None: removed) for the guest's proxy, which re-reads its secrets."""
    with guest(store, name) as client:
        set_secret(client.ask, secret_name, value)


def log(store: StateStore, name: str, service: str) -> str:
    """A role's output in the guest; for the sidecars, their audit lines after it."""
    role = "agent" if service == "cage" else service
    with guest(store, name) as client:
        text = str(client.ask("read", path=f"logs/{role}.log")["content"])
        if role != "agent":
            audit = f"state/audit/{role}/{role}.jsonl"
            try:
                text += str(client.ask("read", path=audit)["content"])
            except VmmError as exc:
                # A sidecar that died before its first decision has no audit file yet;
                # its output, above, is what tells why.
                text += f"(no audit lines: {exc.message})\n"
    return text


def verify(store: StateStore, name: str, topo: Topology, allowed: str | None) -> list[Check]:
    """In-guest checks: the roles run, the guest's root is read-only, the agent's network
    is the cage's (guest_cage.verify_network: the same netcheck as container mode), and
    with default deny, the guest does not forward and each refused flow has its line."""
    plan = _plan(store, name)
    agent = next(role for role in plan.roles if role.name == "agent")
    steered = bool(next(role for role in plan.roles if role.name == "proxy").steering)
    with OwnerClient(plan.control) as client:
        status = client.ask("status")
        checks = role_checks(status)
        checks.append(("guest root read-only", bool(status["root_read_only"]), "/ is ro"))
        if steered:
            forward = str(status.get("ip_forward"))
            checks.append(("proxy does not forward", forward == "0", f"ip_forward {forward}"))
        audit = f"state/audit/proxy/{PROXY_AUDIT_LOG}"
        before = int(client.ask("read", path=audit, offset=1 << 40)["size"])
        deadline = time.monotonic() + VERIFY_SECONDS
        rows = verify_network(
            client.ask, agent, plan.gateway, allowed, topo.proxy_ip, deadline, steered
        )
        lines = audit_records(str(client.ask("read", path=audit, offset=before)["content"]))
    for row in rows:
        check, passed, detail = str(row["name"]), bool(row["passed"]), str(row.get("detail", ""))
        if steered and passed and check in FLOWS:
            passed, detail = audited(check, detail, lines, topo.proxy_ip)
        checks.append((check, passed, detail))
    return checks


def role_states(status: dict[str, Any]) -> dict[str, str]:
    """Each role's state in the guest, from the guest agent's `status`: `running`,
    `exited N` or `never started`."""
    exited = status["roles"]
    return {
        role: "never started" if role not in exited
        else "running" if exited[role] is None
        else f"exited {exited[role]}"
        for role in GUEST_ROLES
    }  # fmt: skip


def role_checks(status: dict[str, Any]) -> list[Check]:
    """`cage verify`'s view of role_states: each role must still run."""
    states = role_states(status)
    return [
        (f"{role} runs in the guest", state == "running", state) for role, state in states.items()
    ]


def guest_roles_now(store: StateStore, name: str) -> dict[str, str]:
    """role_states of a running cage, asked over its control socket (`cage status`)."""
    with guest(store, name) as client:
        return role_states(client.ask("status"))
