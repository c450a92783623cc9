"""Telling systemd that a sidecar is ready: `READY=1` on `$NOTIFY_SOCKET` (sd_notify(3)).

A sidecar's unit has `Notify=true` (quadlet) or `--sdnotify=container` (plain units):
Podman hands the container a socket conmon relays to systemd, and the unit becomes
active only when the sidecar says so here, the moment its listening sockets are bound.
The agent's unit is `After=` both sidecars, so it starts within milliseconds of them
being ready instead of after a polled health check. Standard library only.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def notify_ready(environ: Mapping[str, str] | None = None) -> bool:
    """Send READY=1 if systemd (through Podman) asked for it; True once sent.

    Outside a `Notify=` unit there is no socket and nothing to do. A socket that cannot
    be written raises `OSError`: the unit then never becomes active (systemd times its
    start out), so the agent never starts against a sidecar nobody vouched for.
    """
    env = os.environ if environ is None else environ
    address = env.get(NOTIFY_SOCKET, "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(b"READY=1")
    return True
