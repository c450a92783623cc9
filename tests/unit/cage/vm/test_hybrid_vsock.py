"""The host's side of Firecracker's hybrid vsock: `CONNECT`, `OK`, and trying again."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcage.cage.vm.agent_channel import AgentChannelClient
from agentcage.errors import VmmError


@pytest.fixture
def path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vsock-", dir="/tmp") as tmp:
        yield Path(tmp) / "v.sock"


def serve(path: Path, refusals: int, refusal: bytes = b"") -> list[bytes]:
    """Firecracker's side: the first `refusals` connections get `refusal` after their
    CONNECT and are closed (the guest is not listening yet); then `OK` and one request
    answered as the guest agent would."""
    seen: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)

    def run() -> None:
        with server:
            for attempt in range(refusals + 1):
                conn, _ = server.accept()
                with conn, conn.makefile("rwb") as stream:
                    seen.append(stream.readline())
                    if attempt < refusals:
                        stream.write(refusal)
                        continue
                    stream.write(b"OK 1073741824\n")
                    stream.flush()
                    request = json.loads(stream.readline())
                    stream.write(json.dumps({"ok": True, "echo": request["op"]}).encode() + b"\n")
                    stream.flush()
                    stream.readline()  # until the client closes

    threading.Thread(target=run, daemon=True).start()
    return seen


def test_connect_is_retried_until_the_guest_accepts(path: Path) -> None:
    seen = serve(path, refusals=2)
    client = AgentChannelClient(path, time.monotonic() + 10, vsock_port=1024)
    assert client.request("status", 5) == {"ok": True, "echo": "status"}
    client.close()
    assert seen == [b"CONNECT 1024\n"] * 3


def test_a_refusal_until_the_deadline_is_an_error(path: Path) -> None:
    serve(path, refusals=1000)
    with pytest.raises(VmmError, match=r"never opened: nothing accepts on vsock port 1024"):
        AgentChannelClient(path, time.monotonic() + 1, vsock_port=1024)


def test_an_answer_that_is_not_ok_is_no_connection(path: Path) -> None:
    serve(path, refusals=1000, refusal=b"ERR no such port\n")
    with pytest.raises(VmmError, match=r"vsock port 1024: b'ERR no such port\\n'"):
        AgentChannelClient(path, time.monotonic() + 0.5, vsock_port=1024)
