"""The host's side of the guest agent channel: JSON lines over the monitor's unix socket.

QEMU's virtio-serial socket carries the stream as it is. Firecracker's vsock is "hybrid":
the host connects to its unix socket and first writes `CONNECT <port>\n`; Firecracker
answers `OK <host port>\n` once the guest accepts on that port, and closes the
connection if nothing listens there yet (the guest still booting): then it is tried again.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from agentcage.errors import VmmError


class AgentChannelClient:
    """One connection to the guest agent; requests are answered in order, one line each."""

    def __init__(self, path: Path, deadline: float, vsock_port: int | None = None) -> None:
        self.path = path
        self._sock = _connect(path, deadline, vsock_port)
        self._buffer = b""

    def request(self, op: str, wait: float, **arguments: object) -> dict[str, Any]:
        """Send `op` with `arguments` and wait up to `wait` seconds for its answer.

        The request waits in the channel until the guest agent opens its port, so the first
        one doubles as "wait until the guest is up".
        """
        try:
            self._sock.sendall(json.dumps({"op": op, **arguments}).encode() + b"\n")
        except OSError as exc:
            raise VmmError(f"the guest agent channel broke before {op!r}: {exc}") from exc
        end = time.monotonic() + wait
        while b"\n" not in self._buffer:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise VmmError(f"the guest agent did not answer {op!r} within {wait:.0f} s")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise VmmError(f"the guest agent channel broke during {op!r}: {exc}") from exc
            if not chunk:
                raise VmmError(f"the guest agent channel closed during {op!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise VmmError(f"the guest agent refused {op!r}: {reply.get('error')}")
        return reply

    def wait_closed(self, end: float) -> bool:
        """Whether the monitor closed the channel (it does on exit) before `end`."""
        try:
            while True:
                self._sock.settimeout(max(end - time.monotonic(), 0.01))
                if not self._sock.recv(4096):
                    return True
        except OSError:  # a timeout included
            return False

    def close(self) -> None:
        self._sock.close()


def _connect(path: Path, deadline: float, vsock_port: int | None) -> socket.socket:
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            if vsock_port is not None:
                _hybrid_vsock(sock, vsock_port, deadline)
            return sock
        except OSError as exc:
            sock.close()
            if time.monotonic() > deadline:
                raise VmmError(f"the guest agent socket {path} never opened: {exc}") from exc
            time.sleep(0.02 if vsock_port is None else 0.2)


def _hybrid_vsock(sock: socket.socket, port: int, deadline: float) -> None:
    """Firecracker's handshake; an OSError (to try again) unless the guest accepted."""
    sock.settimeout(max(deadline - time.monotonic(), 0.1))
    sock.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n") and len(line) < 64:
        chunk = sock.recv(1)  # byte by byte: what follows the line is the agent's
        if not chunk:
            raise ConnectionResetError(f"nothing accepts on vsock port {port} yet")
        line += chunk
    if not line.startswith(b"OK "):
        raise ConnectionRefusedError(f"vsock port {port}: {line[:64]!r}")
    sock.settimeout(None)


def shutdown(path: Path, wait: float) -> bool:
    """Ask the guest to shut down and wait for the channel to close (QEMU exiting).

    True if the guest went within `wait` seconds. The VM's systemd service runs this as
    `ExecStop=`; whatever is still running afterwards, systemd terminates, then kills.
    QEMU serves one client at a time on the channel: this must be the only one.
    """
    end = time.monotonic() + wait
    try:
        client = AgentChannelClient(path, end)
        client.request("shutdown", max(end - time.monotonic(), 0.1))
        return client.wait_closed(end)
    except VmmError:
        return False


if __name__ == "__main__":
    import sys

    sys.exit(0 if shutdown(Path(sys.argv[1]), float(sys.argv[2])) else 1)
