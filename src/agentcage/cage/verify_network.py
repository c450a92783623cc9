"""`cage verify`'s network checks: netcheck.py in the agent's own network namespace.

They ran in a helper container on the cage's internal network (`podman run --rm` of the
proxy image): a container's creation, start and removal, about 1 s of the 2-core test
machine's CPU on every verify. Now the checks enter the namespaces the way default deny's
setup does (steering_entry.py, one `podman container inspect` for both PIDs, `nsenter`):

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

from agentcage.cage import topology
from agentcage.cage.ca import CERT
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.contract import (
    AUDIT_DIR,
    CA_DIR,
    CA_VARIABLES,
    NETCHECK_MODULE,
    PROXY_AUDIT_LOG,
    PROXY_VARIABLES,
    PYTHON,
    SIDECAR_USER,
    way_out_environment,
)
from agentcage.cage.steering_entry import SHELL, entry_script

# What the helper container had (--user=10000:10000, --cap-drop=all, no-new-privileges).
UNPRIVILEGED = (
    f"--reuid={SIDECAR_USER}", f"--regid={SIDECAR_USER}", "--clear-groups",
    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
)  # fmt: skip
SCRIPT = entry_script(" ".join(UNPRIVILEGED), '"$@"')
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
    return (SHELL, "-c", SCRIPT, NAME, topo.container("proxy"), topo.container("agent"), *program)


def network_rows(
    cages: CageParts, transparent: bool, topo: topology.Topology, allowed: str | None
) -> list[Row]:
    result = cages.host.runner.run(netcheck_command(transparent, topo, allowed), check=False)
    try:
        rows = json.loads(result.stdout.strip().splitlines()[-1])
        checks = [(str(r["name"]), bool(r["passed"]), str(r["detail"])) for r in rows]
    except (ValueError, IndexError, KeyError, TypeError):
        detail = (result.stderr or result.stdout).strip()[-300:] or "no output"
        return [
            (
                "network checks",
                False,
                f"could not run them in the agent's network namespace (exit "
                f"{result.returncode}): {detail}",
            )
        ]
    if allowed is None:
        checks.append(
            ("allowlisted host reachable", False, "no allowlisted domain to test against")
        )
    return checks
