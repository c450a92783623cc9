"""The HTTP side of `MetricsServer`: prometheus_client's WSGI app on a bound socket.

Loaded at the first scrape, not at start (`exposition.py`): `wsgiref`, `http.server`
and prometheus_client's exposition module are memory an unscraped sidecar never uses.
"""

from __future__ import annotations

import socket
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.registry import CollectorRegistry


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


class _UnixServer(ThreadingWSGIServer):
    address_family = socket.AF_UNIX

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, _ = self.socket.accept()
        return conn, ("local", 0)  # the handler reads a (host, port) pair


def serving(listening: socket.socket, registry: CollectorRegistry) -> ThreadingWSGIServer:
    """A server answering scrapes of `registry` on `listening` (bound and listening)."""
    unix = listening.family == socket.AF_UNIX
    server_class: type[ThreadingWSGIServer] = (
        _UnixServer
        if unix
        else type("_Server", (ThreadingWSGIServer,), {"address_family": listening.family})
    )
    server = server_class(("", 0), _Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listening
    if unix:
        server.server_name, server.server_port = "localhost", 0
    else:
        host, port = listening.getsockname()[:2]
        # What the HTTP server's own bind would set, without its host name lookup.
        server.server_name, server.server_port = str(host), int(port)
    server.setup_environ()
    server.set_app(make_wsgi_app(registry))
    return server
