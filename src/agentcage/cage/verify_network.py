"""`cage verify`'s network checks: netcheck.py in the agent's own network namespace.

They ran in a helper container on the cage's internal network (`podman run --rm` of the
proxy image): a container's creation, start and removal, about 1 s of the 2-core test
machine's CPU on every verify. Now the checks enter the namespaces the way default deny's
setup does (steering_entry.py, `nsenter`), with one `podman container inspect` for the
proxy's, the agent's and the DNS sidecar's PIDs; the sidecars' TCP tables and the
proxy's `ip_forward` are read on the way (SCRIPT):

* the network namespace is the agent's own, not a look-alike: its routes, its default
  deny, its address (the helper had the internal network without the agent's route);
* the mount namespace is the proxy container's (the image's Python and this package;
  the agent's image need have neither), read-only as the proxy runs it. Names are asked
  of the DNS sidecar directly (netcheck_dns.py), the agent's one resolver; TLS trusts
  the cage CA's certificate from the proxy's CA directory, the same file the agent gets
  a copy of;
* `setpriv` makes it the sidecar user (uid and gid 10000, no supplementary groups) with
  no capability in any set, none to regain (empty bounding set) and no-new-privileges:
  what the helper's `--user=10000:10000 --cap-drop=all --security-opt=no-new-privileges`
  gave. What it does not have: a seccomp filter and a cgroup of its own (as the steering
  step); it runs in the host's PID namespace, invisible to the agent and the proxy.

The proxy's audit log is in that mount namespace: the UDP check ends as soon as the deny
listener's line for its datagram is there, and netcheck itself requires each refused
flow's line (netcheck.audited) instead of `cage verify` reading the log afterwards.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass

from agentcage.cage import topology
from agentcage.cage.batched_exec import StepResult
from agentcage.cage.ca import CERT
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.contract import (
    AUDIT_DIR,
    CA_DIR,
    CA_VARIABLES,
    NETCHECK_MODULE,
    PODMAN,
    PROXY_AUDIT_LOG,
    PROXY_VARIABLES,
    PYTHON,
    SIDECAR_USER,
    way_out_environment,
)
from agentcage.cage.steering_entry import SEARCH_PATH, SHELL, USER_NAMESPACE, enter

# What the helper container had (--user=10000:10000, --cap-drop=all, no-new-privileges).
UNPRIVILEGED = (
    f"--reuid={SIDECAR_USER}", f"--regid={SIDECAR_USER}", "--clear-groups",
    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
)  # fmt: skip
# What verify reads of the sidecars is read here too, with the PIDs this script finds
# anyway: each was a `podman exec` of its own (a Podman process, an exec session and a
# conmon: 0.34 to 0.9 s each in bench.cages.trace, all at once on two cores). The same
# kernel tables: /proc/PID/net is the network namespace of PID, and ip_forward is read
# in the proxy's network namespace. Each part is framed by a line `MARK NAME`; the
# agent's environment and mounts (a JSON line each, from the inspect) come first.
MARK = "agentcage-verify-read"
_READS = (
    f'echo "{MARK} env"; printf \'%s\\n\' "$env"; '
    f'echo "{MARK} mounts"; printf \'%s\\n\' "$mounts"; '
    '[ "$proxy" -gt 0 ] && [ "$target" -gt 0 ] || exit 1; '
    f'echo "{MARK} proxy"; cat /proc/$proxy/net/tcp /proc/$proxy/net/tcp6 2>&1 || :; '
    f'echo "{MARK} dns"; cat /proc/$dns/net/tcp /proc/$dns/net/tcp6 2>&1 || :; '
    f'echo "{MARK} forward"; PATH={SEARCH_PATH} nsenter --target="$proxy" $user --net '
    f'cat /proc/sys/net/ipv4/ip_forward 2>&1 && echo "{MARK} read" || echo "{MARK} failed"; '
    f'echo "{MARK} end"; '
)
# One `podman container inspect` for all three (the agent's environment and mounts had
# one of their own: 0.2 to 0.27 s in bench.cages.trace, beside the rest): each
# container's PID on a line and, after the agent's (named $2, a checked name: letters,
# digits and dashes), its environment and its mounts, a JSON line each.
_INSPECT = (
    "nl='\n'; "
    f'info=$({PODMAN} container inspect --format="{{{{.State.Pid}}}}'
    '{{if eq .Name \\"$2\\"}}$nl{{json .Config.Env}}$nl{{json .Mounts}}{{end}}" '
    '"$1" "$2" "$3"); '
    "{ read -r proxy; read -r target; read -r env; read -r mounts; read -r dns; } <<EOF\n"
    "$info\nEOF\n"
)
# $1 the proxy container, $2 the agent's, $3 the DNS sidecar's, then netcheck's argv;
# `enter` drops the three names. A DNS sidecar that does not run (PID 0) leaves its
# table unread (its check fails); the proxy and the agent must run (_READS).
SCRIPT = "set -e; " + _INSPECT + USER_NAMESPACE + _READS + enter(3, " ".join(UNPRIVILEGED), '"$@"')
NAME = "agentcage-verify"  # $0 of the script
ENV = "/usr/bin/env"  # in the proxy's image (coreutils)
Row = tuple[str, bool, str]


def udp_host() -> str:
    """Where this verify's UDP check sends: an address in TEST-NET-3, which exists nowhere.

    Every verify sends from the agent's address, and the steering's NAT puts the original
    destination port into the source port, so a second datagram to the same address and
    port while conntrack holds the first (30 s for UDP) clashes with it and is dropped,
    unaudited (docs/transparent.md). A new address each time keeps verifies apart; through
    the agent's route it reaches the deny listener as the proxy's own address would.
    """
    return f"203.0.113.{1 + secrets.randbelow(254)}"


def netcheck_command(
    transparent: bool, topo: topology.Topology, allowed: str | None
) -> tuple[str, ...]:
    """The argv, run where the cage runs, that prints netcheck's JSON rows."""
    env = way_out_environment(topo)
    variables = [f"{key}={env[key]}" for key in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy")]
    variables += [f"{key}={CA_DIR}/{CERT}" for key in CA_VARIABLES]
    gateway = str(ipaddress.IPv4Network(topo.external_subnet)[1])
    program = [ENV, "-i", *variables, PYTHON, "-I", "-m", NETCHECK_MODULE]
    program += ["--gateway", gateway, "--resolver", topo.dns_ip]
    if allowed:
        program += ["--allowed-host", allowed]
    if transparent:
        # Default deny gave the agent's namespace its route via the proxy: --steered.
        program += ["--proxy", topo.proxy_ip, "--steered"]
        program += ["--audit-log", f"{AUDIT_DIR}/{PROXY_AUDIT_LOG}", "--udp-host", udp_host()]
    containers = (topo.container("proxy"), topo.container("agent"), topo.container("dns"))
    return (SHELL, "-c", SCRIPT, NAME, *containers, *program)


@dataclass(frozen=True)
class NetworkChecks:
    rows: list[Row]
    # What the script read beside them (_READS): each sidecar's TCP tables, as read (an
    # error's text instead when they could not be), and the proxy's ip_forward.
    proxy_tcp: str
    dns_tcp: str
    forward: StepResult
    # The agent's environment and mounts as the inspect printed them (JSON; "" when it
    # failed, `error` then says why).
    agent_env: str
    agent_mounts: str
    error: str


def network_checks(
    cages: CageParts, transparent: bool, topo: topology.Topology, allowed: str | None
) -> NetworkChecks:
    result = cages.host.runner.run(netcheck_command(transparent, topo, allowed), check=False)
    why = (result.stderr or result.stdout).strip()[-160:] or "no output"
    reads = _reads(result.stdout)
    forward = reads.get("forward", "")
    read = forward.endswith(f"{MARK} read\n")
    forward_step = StepResult(0 if read else 1, forward.rpartition(f"{MARK} ")[0])
    if "forward" not in reads:
        forward_step = StepResult(1, f"the script ended first (exit {result.returncode}): {why}")
    return NetworkChecks(
        _rows(result.stdout, result.stderr, result.returncode, allowed),
        reads.get("proxy", ""),
        reads.get("dns", ""),
        forward_step,
        reads.get("env", "").strip(),
        reads.get("mounts", "").strip(),
        why,
    )


_PARTS = ("env", "mounts", "proxy", "dns", "forward", "end")


def _reads(stdout: str) -> dict[str, str]:
    """The framed parts before netcheck's own output: {name: text}."""
    parts: dict[str, str] = {}
    name = None
    for line in stdout.splitlines(keepends=True):
        if line.startswith(f"{MARK} ") and line.split()[1] in _PARTS:
            name = line.split()[1]
            if name == "end":
                break
            parts[name] = ""
        elif name is not None:
            parts[name] += line
    return parts


def _rows(stdout: str, stderr: str, returncode: int, allowed: str | None) -> list[Row]:
    try:
        rows = json.loads(stdout.strip().splitlines()[-1])
        checks = [(str(r["name"]), bool(r["passed"]), str(r["detail"])) for r in rows]
    except (ValueError, IndexError, KeyError, TypeError):
        detail = (stderr or stdout).strip()[-300:] or "no output"
        return [
            (
                "network checks",
                False,
                f"could not run them in the agent's network namespace (exit "
                f"{returncode}): {detail}",
            )
        ]
    if allowed is None:
        checks.append(
            ("allowlisted host reachable", False, "no allowlisted domain to test against")
        )
    return checks
