"""Serving a metrics registry to the host: a loopback TCP port or a unix socket.

`--metrics` takes `PORT`, `HOST:PORT` with a loopback HOST (127.0.0.1, ::1,
localhost), or `unix:PATH`. Any other address is refused: inside a cage every
other interface of the proxy and the DNS sidecar is on the agent's network. The
server is prometheus_client's WSGI app in its own threads, so a scrape never waits
on the event loop that serves the agent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import socket
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.registry import CollectorRegistry

from agentcage.errors import ConfigError
from agentcage.metrics.unix_path import addressable

HELP = (
    "Serve Prometheus metrics to the host: PORT or HOST:PORT on a loopback address, or "
    "unix:PATH (a socket, mode 0600 unless --metrics-socket-mode says otherwise). Off by "
    "default."
)
SOCKET_MODES = ("0600", "0660", "0666")
SOCKET_MODE_HELP = (
    "Mode of the unix:PATH socket: 0600 (its owner alone may scrape), 0660 or 0666, for a "
    "socket whose directory is the guard (a cage's: only the host user reaches it)."
)
_HINT = "give PORT, 127.0.0.1:PORT, [::1]:PORT or unix:PATH"
_BACKLOG = 5  # socketserver's request_queue_size, as the server bound its own before

if TYPE_CHECKING:
    from prometheus_client.exposition import ThreadingWSGIServer


@dataclass(frozen=True)
class MetricsEndpoint:
    host: str = "127.0.0.1"
    port: int = 0
    socket_path: Path | None = None
    socket_mode: int = 0o600

    @classmethod
    def parse(cls, text: str, socket_mode: str | None = None) -> MetricsEndpoint:
        """`socket_mode` (one of SOCKET_MODES) only for a unix socket."""
        if text.startswith("unix:"):
            path = text.removeprefix("unix:")
            if not path:
                raise ConfigError(f"--metrics {text!r}: no socket path", hint=_HINT)
            mode = socket_mode or SOCKET_MODES[0]
            if mode not in SOCKET_MODES:
                raise ConfigError(f"socket mode {mode!r}: choose {', '.join(SOCKET_MODES)}")
            return cls(socket_path=Path(path), socket_mode=int(mode, 8))
        if socket_mode is not None:
            raise ConfigError(
                f"--metrics {text!r} is not a unix socket; a socket mode applies to unix:PATH"
            )
        host, _, port = text.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"--metrics {text!r}: {port!r} is not a port", hint=_HINT)
        if host != "localhost":
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ConfigError(
                    f"--metrics {text!r}: {host} is not a loopback address; metrics are for "
                    "the host only, never on a network the agent can reach",
                    hint=_HINT,
                )
        return cls(host=host, port=int(port))


class MetricsServer:
    """Serves `registry` at `endpoint` until `close`; `url` says where."""

    def __init__(self, registry: CollectorRegistry, endpoint: MetricsEndpoint) -> None:
        self.endpoint = endpoint
        self._registry = registry
        try:
            if endpoint.socket_path is not None:
                self._socket = self._unix(endpoint.socket_path)
            else:
                self._socket = _tcp(endpoint.host, endpoint.port)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics at {self.describe()}: {exc.strerror or exc}", hint=_HINT
            ) from exc
        self._server: ThreadingWSGIServer | None = None  # made at the first scrape
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="agentcage-metrics", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Sleep until a scrape or `close`: `serve_forever` woke twice a second to look for
        a shutdown request, which with fifty cages was a tenth of a core's idle time."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._socket, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj == self._wake_read for key, _ in ready):
                    return
                if self._server is None:
                    from agentcage.metrics.wsgi_server import serving

                    self._server = serving(self._socket, self._registry)
                self._server.handle_request()  # readable: accepts without waiting

    def _unix(self, path: Path) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()  # left by a run that was killed
        # Created with its mode rather than chmod-ed after: never looser, even briefly.
        old = os.umask(0o777 & ~self.endpoint.socket_mode)
        try:
            with addressable(path) as name:
                return _listening(socket.AF_UNIX, name)
        finally:
            os.umask(old)

    def describe(self) -> str:
        if self.endpoint.socket_path is not None:
            return f"unix:{self.endpoint.socket_path}"
        return self.url

    @property
    def url(self) -> str:
        if self.endpoint.socket_path is not None:
            return f"http://localhost/metrics (unix:{self.endpoint.socket_path})"
        host, port = self._bound()
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def _bound(self) -> tuple[str, int]:
        sock = getattr(self, "_socket", None)
        if sock is None:
            return self.endpoint.host, self.endpoint.port
        address = sock.getsockname()
        return str(address[0]), int(address[1])

    def close(self) -> None:
        os.write(self._wake_write, b"x")
        self._thread.join()
        os.close(self._wake_read)
        os.close(self._wake_write)
        self._socket.close()  # the server's socket too, if a scrape made one
        if self.endpoint.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.endpoint.socket_path.unlink()


def _tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return _listening(family, (host, port))


def _listening(family: socket.AddressFamily, address: str | tuple[str, int]) -> socket.socket:
    """A stream socket bound to `address` and listening, as socketserver's would be."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HTTPServer does
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock
