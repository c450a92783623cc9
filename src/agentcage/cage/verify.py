"""`cage verify`: check from inside a running cage that its walls hold.

Process checks run in the agent container itself (one `podman exec`, batched_exec.py);
network checks run in the agent's own network namespace (verify_network.py, netcheck.py).
A check that cannot run counts as failed: a verify that silently skips proves nothing.
"""

from __future__ import annotations

import json
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from agentcage.cage import listeners, running, topology, verify_config
from agentcage.cage.batched_exec import StepResult, run_steps
from agentcage.cage.ca import KEY_AND_CERT
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.contract import (
    AGENT_CA,
    CA_DIR,
    CA_VARIABLES,
    PROXY_VARIABLES,
    SECRETS_DIR,
    secret_id,
    service_name,
    way_out_environment,
)
from agentcage.cage.host_files import on_target
from agentcage.cage.layout import host_paths
from agentcage.cage.netcheck import routed_via
from agentcage.cage.topology import DNS_PORT, PROXY_PORT
from agentcage.cage.verify_config import VerifyConfig
from agentcage.cage.verify_network import NetworkChecks, network_checks
from agentcage.config.constants import DENY_PORT
from agentcage.errors import StateError


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def verify(cages: CageParts, name: str) -> list[CheckResult]:
    """Every check of cage NAME; `cages` is any part of the facade (store and host only)."""
    config = verify_config.load(cages.store, name)
    topo = topology.load(cages.store, name)
    if topo is None:
        raise StateError(f"cage {name!r} has no topology; re-create it")
    agent = topo.container("agent")
    if config.microvm:
        if not _is_running(cages, topo, running.VM):
            return [CheckResult("cage running", False, f"{topo.container('vm')} is not running")]
        from agentcage.cage.vm import vm_control  # the microVM layer: for its cages only

        checks = vm_control.verify(cages.store, name, topo, config.allowed_host)
        return [CheckResult("cage running", True, "the microVM runs")] + [
            CheckResult(*check) for check in checks
        ]
    transparent = config.transparent
    # Independent groups, each a `podman` call or two where the cages run: asked at once,
    # verify takes as long as the slowest group (the network checks), not the sum. The
    # agent's file reads are one `podman exec` (batched_exec.py); the sidecars' are read
    # by the network checks' script, which inspects the three containers once anyway,
    # the agent's environment and mounts with its PID (verify_network.py). The stored
    # secrets' values are read beside it. Whether the agent runs is asked beside them (a
    # round trip less before the slowest starts): if it does not, their answers are
    # dropped and that is the one result.
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = pool.submit(_is_running, cages, topo, "agent")
        values = pool.submit(_secret_values, cages, name, topo)
        in_agent = pool.submit(run_steps, cages.host, agent, _agent_steps(transparent))
        network = pool.submit(network_checks, cages, transparent, topo, config.allowed_host)
        if not runs.result():
            return [CheckResult("cage running", False, f"{agent} is not running")]
        read = network.result()
        results = [CheckResult("cage running", True, f"{agent} is active")]
        results += _environment(config, topo, read, values.result())
        results += _process(in_agent.result())
        results += _network(read)
        if transparent:
            results += _default_deny(topo, read, in_agent.result())
        results.append(_metrics_host_only(cages, config, topo, read))
    return results


# The agent's reads, by name (batched_exec.run_steps).
_KEY_PATHS = (f"{CA_DIR}/{KEY_AND_CERT}", f"{posixpath.dirname(AGENT_CA)}/{KEY_AND_CERT}")


def _agent_steps(transparent: bool) -> list[tuple[str, tuple[str, ...]]]:
    steps: list[tuple[str, tuple[str, ...]]] = [
        ("touch", ("touch", "/.agentcage-verify")),
        ("status", ("cat", "/proc/1/status")),
        ("ca", ("cat", AGENT_CA)),
        # Where the key would be had a mount gone wrong: the proxy's CA directory, or next
        # to the agent's certificate.
        *((f"key{i}", ("cat", path)) for i, path in enumerate(_KEY_PATHS)),
    ]
    if transparent:
        steps.append(("route", ("cat", "/proc/net/route")))
    return steps


def _is_running(cages: CageParts, topo: topology.Topology, role: str) -> bool:
    return running.unit_state(cages.host, service_name(topo, role)) == "active"


def _secret_value(cages: CageParts, cage: str, topo: topology.Topology, secret: str) -> str:
    shown = cages.host.podman(
        "secret", "inspect", "--showsecret", "--format", "{{.SecretData}}",
        secret_id(cage, secret), check=False,
    )  # fmt: skip
    if shown.ok and shown.stdout.strip():
        return shown.stdout.strip()
    # Podman < 4.5 has no --showsecret: read the copy mounted into the running proxy.
    mounted = cages.host.podman(
        "exec", topo.container("proxy"), "cat", f"{SECRETS_DIR}/{secret}", check=False
    )
    return mounted.stdout.strip() if mounted.ok else ""


def _secret_values(cages: CageParts, cage: str, topo: topology.Topology) -> dict[str, str]:
    """Each stored secret of the cage by name: its value, or "" when it cannot be read."""
    return {s: _secret_value(cages, cage, topo, s) for s in cages.secret_names(cage)}


def _environment(
    config: VerifyConfig,
    topo: topology.Topology,
    inspected: NetworkChecks,
    secret_values: dict[str, str],
) -> list[CheckResult]:
    agent = topo.container("agent")
    try:
        env = dict(item.split("=", 1) for item in json.loads(inspected.agent_env))
    except (ValueError, TypeError):
        return [CheckResult("agent environment", False, f"cannot inspect {agent}")]
    out = []
    expected = way_out_environment(topo)
    missing = [key for key, token in config.placeholders if env.get(key) != token]
    out.append(
        CheckResult(
            "placeholders in the agent's env",
            not missing,
            f"wrong or missing: {', '.join(missing)}"
            if missing
            else "every secret is a placeholder",
        )
    )
    leaked = []
    for secret, value in secret_values.items():
        if not value:
            leaked.append(f"{secret} (cannot read it to compare)")
        elif any(value in v for v in env.values()):
            leaked.append(secret)
    out.append(
        CheckResult(
            "no real secret values in the agent's env",
            not leaked,
            f"found: {', '.join(leaked)}" if leaked else "none of the stored values appear",
        )
    )
    wrong = [k for k in (*PROXY_VARIABLES, *CA_VARIABLES) if env.get(k) != expected[k]]
    out.append(
        CheckResult(
            "proxy and CA variables set",
            not wrong,
            f"wrong: {', '.join(wrong)}" if wrong else "HTTP(S)_PROXY and CA bundle variables",
        )
    )
    return out


def _process(steps: dict[str, StepResult]) -> list[CheckResult]:
    out = []
    touch = steps["touch"]
    read_only = touch.code != 0 and "read-only" in touch.output.lower()
    out.append(
        CheckResult(
            "root filesystem read-only",
            read_only,
            "writing / fails: read-only file system"
            if read_only
            else f"touch / exit {touch.code}: {touch.output.strip()[:160] or 'it worked'}",
        )
    )
    status = steps["status"]
    fields = dict(
        line.split(":", 1) for line in status.output.splitlines() if ":" in line
    )  # e.g. {"CapEff": "\t0000000000000000"}
    cap_eff = fields.get("CapEff", "").strip()
    nnp = fields.get("NoNewPrivs", "").strip()
    if status.code != 0:
        detail = f"cannot read /proc/1/status: {status.output.strip()[:160]}"
        out += [CheckResult("no capabilities", False, detail)]
        out += [CheckResult("no-new-privileges", False, detail)]
    else:
        out.append(
            CheckResult(
                "no capabilities",
                bool(cap_eff) and int(cap_eff, 16) == 0,
                f"CapEff {cap_eff or 'missing'}",
            )
        )
        out.append(CheckResult("no-new-privileges", nnp == "1", f"NoNewPrivs {nnp or 'missing'}"))
    ca = steps["ca"]
    readable = [p for i, p in enumerate(_KEY_PATHS) if steps[f"key{i}"].code == 0]
    ok = (
        ca.code == 0
        and "PRIVATE KEY" not in ca.output
        and "BEGIN CERTIFICATE" in ca.output
        and not readable
    )
    detail = (
        "the agent has the CA certificate only"
        if ok
        else f"cert readable={ca.code == 0}, holds key={'PRIVATE KEY' in ca.output}, "
        f"key at {readable}"
    )
    out.append(CheckResult("CA private key not readable", ok, detail))
    return out


def _network(network: NetworkChecks) -> list[CheckResult]:
    # Default deny's route is read from the agent itself too (_default_deny): one row.
    return [CheckResult(*row) for row in network.rows if row[0] not in _DEFAULT_DENY]


_DEFAULT_DENY = ("proxy does not forward", "agent routes via the proxy")


def _default_deny(
    topo: topology.Topology, network: NetworkChecks, in_agent: dict[str, StepResult]
) -> list[CheckResult]:
    """The agent's one way out is the proxy, and the proxy's namespace routes nowhere."""
    forward = network.forward
    name = "proxy does not forward"
    if forward.code != 0:
        detail = f"cannot read ip_forward: {forward.output.strip()[:160]}"
        forwarding = CheckResult(name, False, detail)
    else:
        value = forward.output.strip()
        forwarding = CheckResult(name, value == "0", f"ip_forward {value}")
    table = in_agent["route"]
    name = "agent routes via the proxy"
    if table.code != 0:
        route = CheckResult(name, False, f"cannot read its routes: {table.output.strip()[:160]}")
    else:
        route = CheckResult(name, *routed_via(topo.proxy_ip, table.output))
    return [forwarding, route]


def _metrics_host_only(
    cages: CageParts,
    config: VerifyConfig,
    topo: topology.Topology,
    network: NetworkChecks,
) -> CheckResult:
    """The sidecars' metrics sockets are out of the agent's reach (docs/metrics.md).

    The agent mounts no metrics directory, and neither sidecar listens on TCP beyond its
    service ports (and loopback): a metrics endpoint on a port would show up here. The
    proxy's service ports are 8080 and its transparent listeners (docs/transparent.md).
    """
    name = "metrics reachable from the host only"
    paths = on_target(cages.host.files, host_paths(cages.store, topo.cage))
    metrics_dir = paths.proxy_metrics_dir.parent
    try:
        sources = [Path(str(m["Source"])) for m in json.loads(network.agent_mounts) or []]
    except (ValueError, TypeError, KeyError):
        return CheckResult(name, False, f"cannot inspect the agent's mounts: {network.error}")
    problems = [
        f"the agent mounts {s}" for s in sources if s == metrics_dir or metrics_dir in s.parents
    ]
    transparent = [(topo.proxy_ip, port) for port in config.listener_ports]
    if config.transparent:
        transparent.append((topo.proxy_ip, DENY_PORT))
    services = {
        "proxy": [(topo.proxy_ip, PROXY_PORT), *transparent],
        "dns": [(topo.dns_ip, DNS_PORT)],
    }
    tables = {"proxy": network.proxy_tcp, "dns": network.dns_tcp}
    for role, served in services.items():
        # tcp6 is missing where IPv6 is off; whatever was read still counts.
        listening = listeners.parse(tables[role])
        if not listening:
            problems.append(
                f"cannot read the {role}'s listeners: {tables[role].strip()[-160:] or 'nothing'}"
            )
        elif extra := listeners.unexpected(listening, *served):
            problems.append(f"the {role} also listens on {', '.join(extra)}")
    detail = (
        "; ".join(problems)
        if problems
        else "the agent mounts no metrics socket; proxy and DNS listen on their service "
        "ports only (and loopback)"
    )
    return CheckResult(name, not problems, detail)
