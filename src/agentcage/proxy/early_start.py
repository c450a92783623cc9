"""`proxy run`'s start before mitmproxy loads: policy, listening sockets, then READY=1.

Most of a proxy's start is importing mitmproxy (about 0.3 s of 0.55 s on the 2-core test
machine), and the cage's agent starts only once the proxy said READY=1 (sdnotify.py).
So `proxy run` builds the policy first (a bad config or secret still fails before
anything listens, and no READY=1 is sent), binds every TCP socket it will serve (the
explicit listener, the transparent ones, the deny listeners), says READY=1, and only
then loads mitmproxy, whose servers adopt the sockets already bound (`adopt`).

A connection that arrives in between waits in the kernel's accept queue: nothing reads
it until mitmproxy, with the whole addon chain in place, accepts it, so it is inspected
like any other and nothing is forwarded unchecked. If the start fails after READY=1,
the process exits and the waiting connections are reset: fail closed. A listener whose
host is not an IP address (a name could mean several sockets) is not bound early, and
READY=1 then comes once mitmproxy listens, as before.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from agentcage.config.constants import DENY_PORT, WEB_PORTS
from agentcage.errors import ConfigError
from agentcage.held_reload import HeldReload
from agentcage.metrics.exposition import MetricsEndpoint
from agentcage.proxy.checked_config import ConfigCheck
from agentcage.proxy.deny import DenySockets
from agentcage.proxy.namefingerprints import NameFingerprintsFile
from agentcage.proxy.runtime import Runtime, Sources, build_runtime
from agentcage.sdnotify import notify_ready

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig


_BACKLOG = 512  # above asyncio's 100: the agent's first connections may all come at once


@dataclass(frozen=True)
class ProxySettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    ca_dir: Path = Path.home() / ".mitmproxy"
    upstream_ca: Path | None = None
    audit_log: Path | None = None  # None: stdout
    name_fingerprints: Path | None = None  # for the DNS sidecar (namefingerprints.py)
    metrics: MetricsEndpoint | None = None  # None: no metrics served
    transparent: str | None = None  # the address of the transparent listeners (transparent.py)
    deny_flows: bool = False  # serve the deny listeners (deny.py) beside the transparent ones


@dataclass
class HeldListeners:
    """TCP sockets bound and listening before mitmproxy runs, by (host, port) as it asks."""

    sockets: dict[tuple[str, int], socket.socket] = field(default_factory=dict)

    def bind(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP as getaddrinfo gives it to asyncio.start_server: asyncio turns
        # Nagle off (TCP_NODELAY) only on sockets whose proto says TCP, and accepted
        # sockets inherit it. With proto 0 a response's head and body went out as two
        # writes, the second held until the agent's delayed ACK: 40 ms per response.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            # What asyncio.start_server sets, so the socket behaves as mitmproxy's own would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
            sock.listen(_BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sockets[(host, port)] = sock

    def take(self, host: str, port: int) -> socket.socket | None:
        return self.sockets.pop((host, port), None)

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()


@dataclass
class EarlyStart:
    """What `proxy run` made before loading mitmproxy; `server.serve` takes it from here."""

    runtime: Runtime
    held: HeldListeners
    fingerprints: NameFingerprintsFile | None = None
    deny: DenySockets | None = None
    notified: bool = False  # READY=1 sent already
    hup: HeldReload | None = None  # SIGHUPs noted until mitmproxy's handler is installed

    @property
    def reload_asked(self) -> bool:
        return self.hup is not None and self.hup.asked

    def hold_reloads(self) -> None:
        """From READY=1 on a SIGHUP may come (`secret set` right after `cage create`);
        `server.serve` reloads once its own handler is installed (held_reload.py)."""
        self.hup = HeldReload()

    def close(self) -> None:
        self.held.close()
        if self.deny is not None:
            self.deny.close()


def listen_addresses(settings: ProxySettings, config: CageConfig) -> list[tuple[str, int]]:
    """Every TCP (host, port) mitmproxy will listen on: the explicit one, the transparent ones."""
    addresses = [(settings.listen_host, settings.listen_port)]
    if settings.transparent is not None:
        ports = {*WEB_PORTS, *(rule.port for rule in config.network.ports)}
        addresses += [(settings.transparent, port) for port in sorted(ports)]
    return addresses


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def start(
    settings: ProxySettings, sources: Sources, check: ConfigCheck | None = None
) -> EarlyStart:
    """Policy, sockets, READY=1; ConfigError (nothing listening, no READY=1) on a problem."""
    # The resolver (dnspython) loads after READY=1, with mitmproxy (`run`), and the
    # policy is warmed then too: what it builds cannot fail on the config (Policy.warm).
    runtime = build_runtime(sources, check, resolver_later=True, warm_later=True)
    early = EarlyStart(runtime, HeldListeners())
    early.hold_reloads()
    if settings.name_fingerprints is not None:
        # Before READY=1: the agent starts then, and the DNS sidecar answers SERVFAIL to
        # every name while this file is missing.
        early.fingerprints = NameFingerprintsFile(settings.name_fingerprints, sources)
        early.fingerprints.publish(early.runtime.config)
    addresses = listen_addresses(settings, early.runtime.config)
    if not all(_is_address(host) for host, _ in addresses):
        return early  # READY=1 once mitmproxy listens
    try:
        for host, port in addresses:
            try:
                early.held.bind(host, port)
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {_shown(host)}:{port}: {exc.strerror or exc}",
                    hint="the port must be free on that address",
                ) from exc
        if settings.deny_flows and settings.transparent is not None:
            early.deny = open_deny(settings.transparent)
    except ConfigError:
        early.close()
        raise
    early.notified = notify_ready()
    return early


def open_deny(address: str) -> DenySockets:
    """The deny listeners' sockets, bound; ConfigError if they cannot be."""
    sockets = DenySockets(address)
    try:
        return sockets.open()
    except OSError as exc:
        raise ConfigError(
            f"cannot open the deny listeners {' and '.join(sockets.addresses)}: {exc}",
            hint=f"{DENY_PORT} must be free on the transparent address",
        ) from exc


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def adopt(held: HeldListeners) -> None:
    """Have mitmproxy's TCP servers serve the held sockets instead of binding new ones.

    Called once mitmproxy is loaded. A (host, port) with no held socket (one a reload
    added, or one that was never held) is bound by mitmproxy itself, as before.
    """
    import asyncio

    from mitmproxy.proxy import mode_servers

    cls = mode_servers.AsyncioServerInstance
    original: Callable[..., Coroutine[Any, Any, list[Any]]] = cls.listen

    async def listen(self: Any, host: str, port: int) -> list[Any]:
        sock = held.take(host, port) if self.mode.transport_protocol == "tcp" else None
        if sock is None:
            return await original(self, host, port)
        return [await asyncio.start_server(self.handle_stream, sock=sock, backlog=_BACKLOG)]

    cls.listen = listen  # type: ignore[method-assign]


def run(settings: ProxySettings, sources: Sources, check: ConfigCheck | None = None) -> NoReturn:
    """`proxy run`: the early start here, then mitmproxy (server.py) until SIGTERM."""
    early = start(settings, sources, check)
    # While the agent's container starts: the built-in regexes and the disguise search,
    # so the first request does not wait for them. Before anything is served, like the
    # resolver: whatever goes wrong here ends the proxy, closed.
    early.runtime.policy.warm()
    from agentcage.proxy import server

    try:
        early.runtime.resolver.load()  # before anything is served; fails closed
    except ConfigError:
        early.close()
        raise
    server.run(settings, sources, early)
