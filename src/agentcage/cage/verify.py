"""`cage verify`: check from inside a running cage that its walls hold.

Process checks run in the agent container itself (`podman exec`); network checks run
in a helper container with exactly the agent's network view (see netcheck.py). A check
that cannot run counts as failed: a verify that silently skips proves nothing.
"""

from __future__ import annotations

import ipaddress
import json
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from agentcage.audit.record import now_iso
from agentcage.cage import layout, listeners, topology
from agentcage.cage.ca import KEY_AND_CERT
from agentcage.cage.contract import (
    AGENT_CA,
    AUDIT_DIR,
    CA_DIR,
    CA_VARIABLES,
    NETCHECK_MODULE,
    PROXY_AUDIT_LOG,
    PROXY_VARIABLES,
    PYTHON,
    SECRETS_DIR,
    SIDECAR_USER,
    agent_environment,
    secret_id,
)
from agentcage.cage.host_files import on_target
from agentcage.cage.lifecycle import Cages
from agentcage.cage.netcheck import FLOWS, audit_records, audited, routed_via
from agentcage.cage.topology import DNS_PORT, PROXY_PORT
from agentcage.cage.vm import vm_control
from agentcage.config.constants import DENY_PORT
from agentcage.config.schema import CageConfig
from agentcage.errors import StateError


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def verify(cages: Cages, name: str) -> list[CheckResult]:
    config = cages.store.load_config(name)
    topo = topology.load(cages.store, name)
    if topo is None:
        raise StateError(f"cage {name!r} has no topology; re-create it")
    agent = topo.container("agent")
    if config.isolation == "firecracker":
        if not cages.is_running(name):
            return [CheckResult("cage running", False, f"{topo.container('vm')} is not running")]
        checks = vm_control.verify(cages.store, name, topo, _allowed_host(config))
        return [CheckResult("cage running", True, "the microVM runs")] + [
            CheckResult(*check) for check in checks
        ]
    if not cages.is_running(name):
        return [CheckResult("cage running", False, f"{agent} is not running")]
    results = [CheckResult("cage running", True, f"{agent} is active")]
    # Independent groups, each a few `podman` calls where the cages run: asked at once,
    # verify takes as long as the slowest group (the network helper), not the sum.
    with ThreadPoolExecutor(max_workers=5) as pool:
        groups = [
            pool.submit(_environment, cages, config, topo),
            pool.submit(_process, cages, agent),
            pool.submit(_network, cages, config, topo),
        ]
        if config.network.transparent:
            groups.append(pool.submit(_default_deny, cages, topo))
        groups.append(pool.submit(lambda: [_metrics_host_only(cages, config, topo)]))
        for group in groups:
            results += group.result()
    return results


def _exec(cages: Cages, container: str, *argv: str) -> tuple[int, str, str]:
    result = cages.host.podman("exec", container, *argv, check=False)
    return result.returncode, result.stdout, result.stderr


def _secret_value(cages: Cages, cage: str, topo: topology.Topology, secret: str) -> str:
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


def _environment(cages: Cages, config: CageConfig, topo: topology.Topology) -> list[CheckResult]:
    agent = topo.container("agent")
    result = cages.host.podman("inspect", "--format", "{{json .Config.Env}}", agent, check=False)
    try:
        env = dict(item.split("=", 1) for item in json.loads(result.stdout))
    except (ValueError, TypeError):
        return [CheckResult("agent environment", False, f"cannot inspect {agent}")]
    out = []
    expected = agent_environment(config, topo)
    missing = [rule.env for rule in config.secret_injection if env.get(rule.env) != rule.token]
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
    for secret in cages.secret_names(config.name):
        value = _secret_value(cages, config.name, topo, secret)
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


def _process(cages: Cages, agent: str) -> list[CheckResult]:
    out = []
    code, _, err = _exec(cages, agent, "touch", "/.agentcage-verify")
    read_only = code != 0 and "read-only" in err.lower()
    out.append(
        CheckResult(
            "root filesystem read-only",
            read_only,
            "writing / fails: read-only file system"
            if read_only
            else f"touch / exit {code}: {err.strip()[:160] or 'it worked'}",
        )
    )
    code, status, err = _exec(cages, agent, "cat", "/proc/1/status")
    fields = dict(
        line.split(":", 1) for line in status.splitlines() if ":" in line
    )  # e.g. {"CapEff": "\t0000000000000000"}
    cap_eff = fields.get("CapEff", "").strip()
    nnp = fields.get("NoNewPrivs", "").strip()
    if code != 0:
        detail = f"cannot read /proc/1/status: {err.strip()[:160]}"
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
    code, cert, err = _exec(cages, agent, "cat", AGENT_CA)
    # Where the key would be had a mount gone wrong: the proxy's CA directory, or next
    # to the agent's certificate.
    key_paths = (f"{CA_DIR}/{KEY_AND_CERT}", f"{posixpath.dirname(AGENT_CA)}/{KEY_AND_CERT}")
    readable = [p for p in key_paths if _exec(cages, agent, "cat", p)[0] == 0]
    ok = code == 0 and "PRIVATE KEY" not in cert and "BEGIN CERTIFICATE" in cert and not readable
    detail = (
        "the agent has the CA certificate only"
        if ok
        else f"cert readable={code == 0}, holds key={'PRIVATE KEY' in cert}, key at {readable}"
    )
    out.append(CheckResult("CA private key not readable", ok, detail))
    return out


def _allowed_host(config: CageConfig) -> str | None:
    if config.domains.mode != "allowlist":
        return None
    for entry in config.domains.entries:
        try:
            ipaddress.ip_network(entry)
        except ValueError:
            return entry
    return None


def _network(cages: Cages, config: CageConfig, topo: topology.Topology) -> list[CheckResult]:
    images = layout.load_images(cages.store, config.name)
    paths = on_target(cages.host.files, layout.host_paths(cages.store, config.name))
    env = agent_environment(config, topo)
    gateway = str(ipaddress.IPv4Network(topo.external_subnet)[1])
    allowed = _allowed_host(config)
    argv = [
        "run", "--rm", "--pull=never", f"--network={topo.internal_network}",
        f"--dns={topo.dns_ip}", "--read-only", "--cap-drop=all",
        "--security-opt=no-new-privileges", f"--user={SIDECAR_USER}:{SIDECAR_USER}",
        f"--label=agentcage.cage={config.name}", "--label=agentcage.role=verify",
        "-v", f"{paths.ca_public_cert}:{AGENT_CA}:ro",
        f"--entrypoint={PYTHON}",
    ]  # fmt: skip
    for key in (*PROXY_VARIABLES, *CA_VARIABLES, "NO_PROXY", "no_proxy"):
        argv += ["--env", f"{key}={env[key]}"]
    argv += [images.proxy, "-m", NETCHECK_MODULE, "--gateway", gateway]
    if allowed:
        argv += ["--allowed-host", allowed]
    if config.network.transparent:
        argv += ["--proxy", topo.proxy_ip]
    started = now_iso()
    result = cages.host.podman(*argv, check=False)
    try:
        rows = json.loads(result.stdout.strip().splitlines()[-1])
        checks = [CheckResult(str(r["name"]), bool(r["passed"]), str(r["detail"])) for r in rows]
    except (ValueError, IndexError, KeyError, TypeError):
        detail = (result.stderr or result.stdout).strip()[-300:]
        return [CheckResult("network checks", False, f"helper container failed: {detail}")]
    if config.network.transparent:
        checks = [_audited(cages, topo, check, started) for check in checks]
    if allowed is None:
        checks.append(
            CheckResult(
                "allowlisted host reachable", False, "no allowlisted domain to test against"
            )
        )
    return checks


def _audited(cages: Cages, topo: topology.Topology, check: CheckResult, since: str) -> CheckResult:
    """A refused flow counts only with its `kind: flow` line in the proxy's log."""
    if check.name not in FLOWS or not check.passed:
        return check
    lines = [line for line in _proxy_audit_tail(cages, topo) if str(line.get("time", "")) >= since]
    return CheckResult(check.name, *audited(check.name, check.detail, lines, topo.proxy_ip))


def _proxy_audit_tail(cages: Cages, topo: topology.Topology) -> list[dict[str, object]]:
    # Through the proxy container: a rootless cage's log belongs to its subordinate user.
    code, text, _ = _exec(
        cages, topo.container("proxy"), "tail", "-n", "2000", f"{AUDIT_DIR}/{PROXY_AUDIT_LOG}"
    )
    return audit_records(text) if code == 0 else []


def _default_deny(cages: Cages, topo: topology.Topology) -> list[CheckResult]:
    """The agent's one way out is the proxy, and the proxy's namespace routes nowhere."""
    code, forward, err = _exec(
        cages, topo.container("proxy"), "cat", "/proc/sys/net/ipv4/ip_forward"
    )
    name = "proxy does not forward"
    if code != 0:
        forwarding = CheckResult(name, False, f"cannot read ip_forward: {err.strip()[:160]}")
    else:
        forwarding = CheckResult(name, forward.strip() == "0", f"ip_forward {forward.strip()}")
    code, table, err = _exec(cages, topo.container("agent"), "cat", "/proc/net/route")
    name = "agent routes via the proxy"
    if code != 0:
        route = CheckResult(name, False, f"cannot read its routes: {err.strip()[:160]}")
    else:
        route = CheckResult(name, *routed_via(topo.proxy_ip, table))
    return [forwarding, route]


def _metrics_host_only(cages: Cages, config: CageConfig, topo: topology.Topology) -> CheckResult:
    """The sidecars' metrics sockets are out of the agent's reach (docs/metrics.md).

    The agent mounts no metrics directory, and neither sidecar listens on TCP beyond its
    service ports (and loopback): a metrics endpoint on a port would show up here. The
    proxy's service ports are 8080 and its transparent listeners (docs/transparent.md).
    """
    name = "metrics reachable from the host only"
    paths = on_target(cages.host.files, layout.host_paths(cages.store, topo.cage))
    metrics_dir = paths.proxy_metrics_dir.parent
    shown = cages.host.podman(
        "container", "inspect", "--format", "{{json .Mounts}}", topo.container("agent"),
        check=False,
    )  # fmt: skip
    try:
        sources = [Path(str(m["Source"])) for m in json.loads(shown.stdout) or []]
    except (ValueError, TypeError, KeyError):
        return CheckResult(name, False, f"cannot inspect the agent's mounts: {shown.stderr[-160:]}")
    problems = [
        f"the agent mounts {s}" for s in sources if s == metrics_dir or metrics_dir in s.parents
    ]
    transparent = [(topo.proxy_ip, port) for port in config.network.listener_ports()]
    if config.network.transparent:
        transparent.append((topo.proxy_ip, DENY_PORT))
    services = {
        "proxy": [(topo.proxy_ip, PROXY_PORT), *transparent],
        "dns": [(topo.dns_ip, DNS_PORT)],
    }
    for role, served in services.items():
        # tcp6 is missing where IPv6 is off; whatever was read still counts.
        _, table, err = _exec(cages, topo.container(role), "cat", "/proc/net/tcp", "/proc/net/tcp6")
        listening = listeners.parse(table)
        if not listening:
            problems.append(f"cannot read the {role}'s listeners: {err.strip()[:160]}")
        elif extra := listeners.unexpected(listening, *served):
            problems.append(f"the {role} also listens on {', '.join(extra)}")
    detail = (
        "; ".join(problems)
        if problems
        else "the agent mounts no metrics socket; proxy and DNS listen on their service "
        "ports only (and loopback)"
    )
    return CheckResult(name, not problems, detail)
