"""The one owner of a running guest's agent channel, and the host's way to ask through it.

QEMU serves one client at a time on the agent socket, and the guest agent answers its
requests in order on that one stream: two commands talking to it at once (`cage verify`
while `secret set` runs) would read each other's answers. So after boot exactly one
process holds the channel (vm_run.py, in the microVM's container) and serves a control
socket beside it; each request that arrives there is passed to the guest whole and its
answer returned, one at a time under a lock. `OwnerClient.ask` has the signature of
`QemuMachine.ask`, so guest_cage.py's steps run the same way through either.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from agentcage.cage.vm.agent_channel import AgentChannelClient
from agentcage.errors import VmmError

# Ops a client of the control socket may not send: the guest's shutdown belongs to the
# owner (its container's stop), so the VM never goes away behind its service's back.
_OWNER_ONLY = frozenset({"shutdown"})
_LIMIT = 4 << 20


class ChannelOwner:
    def __init__(self, channel: AgentChannelClient, control: Path) -> None:
        self.channel = channel
        self.control = control
        self._lock = threading.Lock()
        self._server: socket.socket | None = None

    def ask(self, op: str, wait: float = 10, **arguments: object) -> dict[str, Any]:
        with self._lock:
            return self.channel.request(op, wait, **arguments)

    def serve(self) -> None:
        """Accept control clients on a thread each until `close`."""
        self.control.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)  # only the owner's uid (and root) may drive the guest
        try:
            server.bind(str(self.control))
        finally:
            os.umask(old)
        server.listen(8)
        self._server = server
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.control.unlink(missing_ok=True)

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(client,), daemon=True).start()

    def _client(self, client: socket.socket) -> None:
        with client, client.makefile("rwb") as stream:
            for line in stream:
                if len(line) > _LIMIT:
                    return
                stream.write(json.dumps(self._answer(line)).encode() + b"\n")
                stream.flush()

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            op = str(request.pop("op"))
            wait = float(request.pop("wait", 10))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        if op in _OWNER_ONLY:
            return {"ok": False, "error": f"{op!r} is the owner's; stop the cage instead"}
        try:
            return self.ask(op, wait, **request)
        except VmmError as exc:
            return {"ok": False, "error": exc.message}


class OwnerClient:
    """A connection to a running microVM cage's control socket."""

    def __init__(self, control: Path, timeout: float = 5) -> None:
        self.control = control
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(str(control))
        except OSError as exc:
            self._sock.close()
            raise VmmError(
                f"the microVM's control socket {control} does not answer: {exc}",
                hint="is the cage running? (`agentcage cage status`)",
            ) from exc
        self._stream = self._sock.makefile("rwb")

    def ask(self, op: str, wait: float = 10, **arguments: object) -> dict[str, Any]:
        self._sock.settimeout(wait + 10)
        try:
            self._stream.write(json.dumps({"op": op, "wait": wait, **arguments}).encode() + b"\n")
            self._stream.flush()
            line = self._stream.readline()
        except OSError as exc:
            raise VmmError(f"the microVM's control socket broke during {op!r}: {exc}") from exc
        if not line:
            raise VmmError(f"the microVM's control socket closed during {op!r}")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise VmmError(f"the guest refused {op!r}: {reply.get('error')}")
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.close()
        self._sock.close()

    def __enter__(self) -> OwnerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def wait_for_control(control: Path, deadline: float) -> None:
    while not control.exists():
        if time.monotonic() > deadline:
            raise VmmError(f"the microVM's control socket {control} never appeared")
        time.sleep(0.5)
