"""`http.client` over a unix socket whose path may be longer than the kernel takes.

The scraping side (`scrape.py`, `cage status`; the microVM's API socket too); the
path is shortened as `unix_path.addressable` says.
"""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

from agentcage.metrics.unix_path import addressable


class UnixHTTPConnection(http.client.HTTPConnection):
    """`http.client` to the server listening on the unix socket at `path`."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with addressable(self._path) as name:
                sock.connect(name)
        except OSError:
            sock.close()
            raise
        self.sock = sock
