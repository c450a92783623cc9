"""The TCP deny listener writes a refused flow's line before it resets the connection."""

from __future__ import annotations

import asyncio
import select
import socket
from types import SimpleNamespace
from typing import cast

import pytest

from agentcage.audit.record import AuditRecord
from agentcage.audit.throttle import LineBudget
from agentcage.audit.writer import AuditWriter
from agentcage.proxy.deny import DenyListeners, DenySockets
from agentcage.proxy.runtime import RuntimeHolder
from tests.support.dns_sidecar import free_port


class _Recorder:
    """Notes, for each line, whether the client had already seen its connection reset."""

    def __init__(self) -> None:
        self.client: socket.socket | None = None
        self.reset_before_line: list[bool] = []

    def write(self, record: AuditRecord) -> None:
        assert self.client is not None
        try:
            self.client.recv(1)
        except BlockingIOError:
            self.reset_before_line.append(False)
        except ConnectionResetError:
            self.reset_before_line.append(True)


def test_the_line_is_written_before_the_reset() -> None:
    recorder = _Recorder()
    holder = cast(RuntimeHolder, SimpleNamespace(current=SimpleNamespace(cage="demo")))
    port = free_port("0.0.0.0")  # not 8079: a proxy on this host may hold it
    sockets = DenySockets("127.0.0.1", port).open()
    listeners = DenyListeners(sockets, holder, cast(AuditWriter, recorder), LineBudget())
    loop = asyncio.new_event_loop()
    try:
        listeners.serve(loop)
        # The kernel completes the handshake from the listen backlog; the loop accepts.
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.setblocking(False)
        recorder.client = client
        for _ in range(100):
            if recorder.reset_before_line:
                break
            loop.run_until_complete(asyncio.sleep(0.02))
        assert recorder.reset_before_line == [False]
        select.select([client], [], [], 5)
        with pytest.raises(ConnectionResetError):  # and then the reset, not a FIN
            client.recv(1)
        client.close()
    finally:
        listeners.close()
        loop.close()
