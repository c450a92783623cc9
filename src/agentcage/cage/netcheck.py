"""Network checks `cage verify` runs in the agent's network namespace.

    python -m agentcage.cage.netcheck --gateway IP [--allowed-host NAME] [--resolver IP]
        [--proxy IP [--steered] [--audit-log PATH] [--udp-host IP]]

It runs with exactly the agent's view: the agent's own network namespace (entered by
verify_network.py; in a microVM, by the guest's agent), the DNS sidecar as resolver
(`--resolver` asks it directly, netcheck_dns.py) and HTTP(S)_PROXY + the cage CA in its
environment. It prints one JSON list of {"name", "passed", "detail"}. Standard library
and this package only. With `--proxy` (the proxy's internal address) it also checks the
transparent path (docs/transparent.md) as a program that ignores the proxy variables
sees it. With `--steered` the namespace has default deny's route via the proxy: that
route must be the only default, and a direct connection must end at the proxy's deny
listener instead of failing for want of a route. With `--audit-log` (the proxy's log,
readable where it runs) each refused flow needs its `flow` line (netcheck_audit.py), and
the UDP check ends as soon as that line is there.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import errno
import json
import select
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from agentcage.cage.netcheck_audit import (
    FLOWS,
    POLL,
    UDP_FLOW,
    AppendedLines,
    with_flow_lines,
)
from agentcage.cage.netcheck_dns import resolve_with

SINKHOLE = "198.51.100.1"
PROBE_NAME = "agentcage-verify.invalid-zone.example"
# Fake credentials shaped like real ones: an AWS access key id and a GitHub token.
FAKE_KEYS = "aws_access_key_id=AKIAZ7VQ3XK2M4N5P6RT token=ghp_Zq8Xv2Lm4Nc6Bt1Ry3Wu5Ks7Hd9Jf0Gp2Ea4"


def no_default_route() -> tuple[bool, str]:
    with open("/proc/net/route") as handle:
        rows = [line.split() for line in handle.readlines()[1:]]
    defaults = [row[0] for row in rows if len(row) > 2 and row[1] == "00000000"]
    if defaults:
        return False, f"default route via {', '.join(defaults)}"
    return True, "no default route"


def default_gateways(route_table: str) -> list[str]:
    """The gateways of /proc/net/route's default rows (little-endian hex), dotted."""
    rows = [line.split() for line in route_table.splitlines()[1:]]
    return [_dotted(row[2]) for row in rows if len(row) > 2 and row[1] == "00000000"]


def _dotted(little_endian_hex: str) -> str:
    try:
        return socket.inet_ntoa(int(little_endian_hex, 16).to_bytes(4, "little"))
    except (ValueError, OverflowError):
        return "?"


def routed_via(proxy: str, route_table: str | None = None) -> tuple[bool, str]:
    """Default deny's route: the only default one leads to the proxy."""
    if route_table is None:
        with open("/proc/net/route") as handle:
            route_table = handle.read()
    gateways = default_gateways(route_table)
    shown = ", ".join(gateways) or "none (refused flows fail unaudited)"
    return gateways == [proxy], f"default route via {shown}"


def gateway_unreachable(gateway: str) -> tuple[bool, str]:
    """A direct connection to the host side of the sidecars' network must not get through."""
    try:
        with socket.create_connection((gateway, 9), timeout=3):
            return False, f"connected directly to {gateway}"
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) or isinstance(exc, TimeoutError):
            return True, f"{gateway}: {exc.strerror or 'timed out'}"
        return False, f"{gateway} answered ({exc}); a route out exists"


def sinkholed() -> tuple[bool, str]:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(PROBE_NAME, 80, socket.AF_INET)}
    except OSError as exc:
        return False, f"{PROBE_NAME} did not resolve ({exc}); expected {SINKHOLE}"
    if addresses == {SINKHOLE}:
        return True, f"{PROBE_NAME} -> {SINKHOLE}"
    return False, f"{PROBE_NAME} -> {sorted(addresses)}, expected {SINKHOLE}"


def _fetch(url: str, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read(400).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(400).decode(errors="replace")


def blocked_host() -> tuple[bool, str]:
    status, body = _fetch(f"http://{PROBE_NAME}/")
    if status == 403:
        return True, "403 from the proxy"
    return False, f"got {status} {body[:120]!r}, expected 403"


def allowed_host(host: str) -> tuple[bool, str]:
    status, body = _fetch(f"https://{host}/")
    if '"blocked"' in body and status in (403, 429):
        return False, f"the proxy blocked {host}: {body[:160]!r}"
    return True, f"https://{host}/ answered {status} through the proxy (TLS via the cage CA)"


def leaked_key(host: str) -> tuple[bool, str]:
    status, _body = _fetch(f"https://{host}/agentcage-verify", FAKE_KEYS.encode())
    if status == 403:
        return True, "a body holding fake AWS/GitHub keys got 403"
    return False, f"a body holding fake keys got {status}, expected 403"


def _fetch_direct(url: str) -> tuple[int, str]:
    """`url` with the proxy variables ignored, as Node's fetch() or curl --noproxy do."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=20) as response:
            return response.status, response.read(400).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(400).decode(errors="replace")


def direct_allowed(host: str) -> tuple[bool, str]:
    status, body = _fetch_direct(f"https://{host}/")
    if '"blocked"' in body and status in (403, 429):
        return False, f"the proxy blocked {host}: {body[:160]!r}"
    return True, f"https://{host}/ answered {status} without proxy settings (transparent)"


def direct_unlisted() -> tuple[bool, str]:
    try:
        status, body = _fetch_direct(f"https://{PROBE_NAME}/")
    except OSError as exc:
        return True, f"no connection: {getattr(exc, 'reason', exc)}"
    if status == 403 and '"blocked"' in body:
        return True, "403 from the proxy"
    return False, f"got {status} {body[:120]!r} without proxy settings"


def unlisted_at_proxy(proxy: str) -> tuple[bool, str]:
    """An unlisted name sent straight to the proxy's TLS listener (SNI and Host) is refused."""
    context = ssl.create_default_context()
    with (
        socket.create_connection((proxy, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=PROBE_NAME) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {PROBE_NAME}\r\nConnection: close\r\n\r\n".encode())
        head = tls.recv(200).decode(errors="replace")
    if head.startswith("HTTP/1.1 403"):
        return True, f"{PROBE_NAME} at {proxy}:443: 403"
    return False, f"{PROBE_NAME} at {proxy}:443 answered {head[:60]!r}"


def tcp_refused(proxy: str, port: int) -> tuple[bool, str]:
    """Refused: no connection, or one the proxy's deny listener resets before any byte."""
    try:
        with socket.create_connection((proxy, port), timeout=3) as conn:
            conn.settimeout(3)
            data = conn.recv(1)
    except ConnectionResetError:
        return True, f"{proxy}:{port}: reset by the proxy's deny listener"
    except TimeoutError:
        return False, f"{proxy}:{port}: connected, and the connection stays open"
    except OSError as exc:
        return True, f"{proxy}:{port}: {exc.strerror or type(exc).__name__}"
    if data:
        return False, f"connected to {proxy}:{port}, which answered"
    return True, f"{proxy}:{port}: closed without a byte"


UDP_WAIT = 2.0  # for an answer that must not come, when no flow line says why none will


def udp_unanswered(
    proxy: str, port: int, audit_log: str | None = None, wait: float = UDP_WAIT
) -> tuple[bool, str]:
    """No answer to a datagram: the proxy's deny listener took it, or none came in `wait`.

    The deny listener answers nothing, so "no answer" alone is only known by waiting. With
    `audit_log` (the proxy's, readable here) the wait ends as soon as the listener's `flow`
    line for this datagram is there: the datagram reached the listener, not a route out.
    An ICMP error ends it too (a connected socket sees it as the next `recv`'s error).
    """
    log = AppendedLines(audit_log)
    deadline = time.monotonic() + wait
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((proxy, port))
        sock.send(b"\x1b" + b"\0" * 47)  # an NTP client request
        while True:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([sock], [], [], min(POLL, max(left, 0)))
            if readable:
                try:
                    sock.recv(512)
                except OSError as exc:
                    return True, f"{proxy}:{port}/udp: {exc.strerror} (ICMP error)"
                return False, f"{proxy}:{port}/udp answered"
            if log.has_flow("udp", proxy, port):
                return True, f"{proxy}:{port}/udp: no answer; the proxy's deny listener took it"
            if left <= 0:
                return True, f"{proxy}:{port}/udp: no answer in {wait:g} s (timed out)"


def _flow_check(
    proxy: str, protocol: str, port: int, audit_log: str | None
) -> Callable[[], tuple[bool, str]]:
    if protocol == "udp":
        return lambda: udp_unanswered(proxy, port, audit_log)
    return lambda: tcp_refused(proxy, port)


def transparent_checks(
    proxy: str, allowed: str | None, audit_log: str | None = None, udp_host: str | None = None
) -> list[tuple[str, Callable[[], tuple[bool, str]]]]:
    """`udp_host`: where the UDP check sends (the proxy's address unless given)."""
    checks: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        ("no-proxy request to an unlisted host refused", direct_unlisted),
        ("unlisted name at the proxy refused", lambda: unlisted_at_proxy(proxy)),
        *(
            (
                name,
                _flow_check(
                    udp_host or proxy if name == UDP_FLOW else proxy, protocol, port, audit_log
                ),
            )
            for name, (protocol, port) in FLOWS.items()
        ),
    ]
    if allowed:
        checks.insert(
            0, ("no-proxy request to an allowlisted host", lambda: direct_allowed(allowed))
        )
    return checks


def run(
    gateway: str,
    allowed: str | None,
    proxy: str | None = None,
    steered: bool = False,
    audit_log: str | None = None,
    udp_host: str | None = None,
) -> list[dict[str, object]]:
    route: tuple[str, Callable[[], tuple[bool, str]]]
    direct: tuple[str, Callable[[], tuple[bool, str]]]
    if steered and proxy:
        via = proxy
        route = ("agent routes via the proxy", lambda: routed_via(via))
        direct = ("no direct route out", lambda: tcp_refused(gateway, 9))
    else:
        route = ("no default route", no_default_route)
        direct = ("no direct route out", lambda: gateway_unreachable(gateway))
    checks: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        route,
        direct,
        ("unlisted name sinkholed", sinkholed),
        ("unlisted host blocked", blocked_host),
    ]
    if allowed:
        checks += [
            ("allowlisted host reachable", lambda: allowed_host(allowed)),
            ("fake key in body blocked", lambda: leaked_key(allowed)),
        ]
    if proxy:
        checks += transparent_checks(proxy, allowed, audit_log, udp_host)
    log = AppendedLines(audit_log) if proxy else None
    # At once: most of each check is waiting (the UDP one up to 2 s for the answer that
    # must not come), and none depends on another. Results keep the checks' order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(checks)) as pool:
        outcomes = list(pool.map(_outcome, checks))
    rows = [
        (name, passed, detail) for (name, _), (passed, detail) in zip(checks, outcomes, strict=True)
    ]
    if log is not None and audit_log is not None and proxy:
        hosts = {name: proxy for name in FLOWS} | {UDP_FLOW: udp_host or proxy}
        rows = with_flow_lines(rows, log, hosts, _source_address(proxy))
    return [{"name": name, "passed": passed, "detail": detail} for name, passed, detail in rows]


def _source_address(destination: str) -> str:
    """This namespace's address towards `destination` (nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((destination, 9))
        return str(sock.getsockname()[0])


def _outcome(check: tuple[str, Callable[[], tuple[bool, str]]]) -> tuple[bool, str]:
    try:
        return check[1]()
    except (OSError, ssl.SSLError, ValueError) as exc:
        return False, f"could not run: {type(exc).__name__}: {exc}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="netcheck")
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--allowed-host")
    parser.add_argument("--proxy")
    parser.add_argument("--steered", action="store_true")
    parser.add_argument("--audit-log", help="the proxy's audit log, to end the UDP wait early")
    parser.add_argument("--resolver", help="ask this DNS server, not /etc/resolv.conf's")
    parser.add_argument("--udp-host", help="send the UDP check here (default: --proxy)")
    args = parser.parse_args(argv)
    if args.resolver:
        resolve_with(args.resolver)
    rows = run(
        args.gateway, args.allowed_host, args.proxy, args.steered, args.audit_log, args.udp_host
    )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
