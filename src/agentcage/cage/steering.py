"""Default deny with audit: the agent's default route and the proxy namespace's redirects.

    python -m agentcage.cage.steering proxy ADDRESS DENY_PORT PORT... [--dns ADDRESS]
    python -m agentcage.cage.steering agent ADDRESS           (in the agent's namespace)

Both run from `ExecStartPost=` of the proxy's and the agent's units, through `nsenter`
into the proxy container's mount namespace and the target's network namespace, with
NET_ADMIN alone (cage/steering_entry.py); neither the proxy nor the agent ever holds a
capability. `proxy` installs, in the proxy's network namespace:

- a NAT redirect of every TCP flow arriving on the internal interface that is not
  aimed at one of the proxy's own ports (PORT...) to the deny listener, which reads
  the original destination from conntrack (proxy/deny.py);
- for UDP, a NAT that keeps the destination address and sets the deny port, another
  (on input) that puts the original destination port into the source port, and a
  local route for UDP from that interface, so the deny listener receives it with its
  destination intact. NAT rather than rewriting the header's ports: a rootless
  container's namespaces belong to a user namespace, where the kernel refuses
  nftables payload writes but allows NAT, so one ruleset serves rootful and rootless;
- a `forward` chain that drops everything, beside `ip_forward=0`, which the unit sets.

`--dns`: the DNS sidecar's address when it shares the proxy's namespace, as in a microVM
guest (vm/guest_cage.py, where the guest agent runs this module as root instead of
through `nsenter`); TCP and UDP to its port 53 are left alone. In container mode the
sidecar has a namespace of its own on the agent's network and no such exception exists.

`agent` gives the agent a default route via the proxy's internal address, and takes it
away again unless a test connection through it reaches the deny listener. Fail closed
either way: without the route the agent has no route, as before; without the redirects
the proxy's namespace does not forward, so a flow ends there unaudited, never outside.
Standard library only: it runs with the image's Python (contract.STEERING_MODULE).
"""

from __future__ import annotations

import socket
import subprocess
import sys

# The routing table of the proxy namespace's local route for the agent's UDP.
UDP_TABLE = 4079
RULE_PRIORITY = 1000
TABLE = "agentcage"
# TEST-NET-1 (RFC 5737): where the agent's route check connects; it exists nowhere.
SELF_CHECK = "192.0.2.1"
# nft's `srcnat` names 100 only on postrouting; on input it must be given as a number.
SRCNAT_ON_INPUT = 100
DNS_OPTION = "--dns"
DNS_PORT = 53  # topology.DNS_PORT; this module runs with the standard library only


def nft_ruleset(
    interface: str, address: str, own_ports: list[int], deny_port: int, dns: str | None = None
) -> str:
    """The nftables table of the proxy's namespace (replacing any earlier one)."""
    ports = ", ".join(str(port) for port in sorted({*own_ports, deny_port}))
    beside = (
        f'iifname "{interface}" ip daddr {dns} meta l4proto {{ tcp, udp }} th dport {DNS_PORT} '
        "accept\n        "
        if dns
        else ""
    )
    return f"""\
table ip {TABLE}
delete table ip {TABLE}
table ip {TABLE} {{
    chain udp_to_deny {{
        type nat hook prerouting priority dstnat; policy accept;
        {beside}iifname "{interface}" udp dport != {deny_port} dnat to ip daddr : {deny_port}
    }}
    chain udp_port_kept {{
        type nat hook input priority {SRCNAT_ON_INPUT}; policy accept;
        iifname "{interface}" udp dport {deny_port} ct original proto-dst != {deny_port} \
snat to ip saddr : ct original proto-dst
    }}
    chain tcp_to_deny {{
        type nat hook prerouting priority dstnat; policy accept;
        {beside}iifname "{interface}" ip daddr {address} tcp dport {{ {ports} }} accept
        iifname "{interface}" meta l4proto tcp redirect to :{deny_port}
    }}
    chain never_forward {{
        type filter hook forward priority filter; policy drop;
    }}
}}
"""


def interface_of(address: str) -> str:
    """The name of the interface holding `address`."""
    shown = _run("ip", "-o", "-4", "addr", "show", "to", f"{address}/32")
    words = shown.split()
    if len(words) < 2:
        raise SystemExit(f"steering: no interface holds {address}")
    return words[1]


def forwarding_off() -> bool:
    with open("/proc/sys/net/ipv4/ip_forward") as handle:
        return handle.read().strip() == "0"


def steer_proxy(address: str, own_ports: list[int], deny_port: int, dns: str | None = None) -> None:
    if not forwarding_off():
        # Routing the agent here would make this namespace its router.
        raise SystemExit("steering: ip_forward is on in the proxy's namespace; refusing")
    interface = interface_of(address)
    _run("nft", "-f", "-", stdin=nft_ruleset(interface, address, own_ports, deny_port, dns))
    # 17, not `udp`: a minimal image has no /etc/protocols for `ip` to look the name up in.
    rule = ["iif", interface, "ipproto", str(socket.IPPROTO_UDP), "lookup", str(UDP_TABLE)]
    _run("ip", "rule", "add", *rule, "priority", str(RULE_PRIORITY))
    _run("ip", "route", "replace", "local", "0.0.0.0/0", "dev", "lo", "table", str(UDP_TABLE))


def steer_agent(via: str) -> None:
    """The default route via the proxy, kept only if the proxy's deny listener answers.

    Without the proxy's redirects a flow sent there would vanish silently, and a client
    would wait for its timeout instead of failing at once for want of a route.
    """
    _run("ip", "route", "replace", "default", "via", via)
    reached, detail = deny_listener_answers()
    if not reached:
        _run("ip", "route", "del", "default", "via", via)
        raise SystemExit(f"steering: no deny listener behind {via} ({detail}); route removed")


def deny_listener_answers(timeout: float = 10.0) -> tuple[bool, str]:
    """Whether a TCP flow to an address outside the cage reaches the deny listener.

    A completed handshake is the proof: the proxy's namespace does not forward, so only
    its redirect to a listening socket can answer. It leaves one audit line, `TCP to
    192.0.2.1:9 refused`, per start of the agent.
    """
    try:
        with socket.create_connection((SELF_CHECK, 9), timeout=timeout):
            return True, "connected"
    except ConnectionResetError:
        # The listener resets every flow it accepts; on a busy host that reset can land
        # before `connect` reports success. A reset (not a refusal) needs a completed
        # handshake, so it is the same proof.
        return True, "connected, then reset"
    except OSError as exc:
        return False, exc.strerror or type(exc).__name__


def _run(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"steering: {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def main(argv: list[str]) -> int:
    dns = None
    if argv[-2:-1] == [DNS_OPTION]:
        argv, dns = argv[:-2], argv[-1]
    if len(argv) >= 3 and argv[0] == "proxy":
        deny_port, *own = (int(port) for port in argv[2:])
        steer_proxy(argv[1], own, deny_port, dns)
    elif len(argv) == 2 and argv[0] == "agent" and dns is None:
        steer_agent(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
