"""The channel's one owner: clients' requests reach the guest whole, one at a time."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcage.cage.vm.agent_channel import AgentChannelClient
from agentcage.cage.vm.channel_owner import ChannelOwner, OwnerClient
from agentcage.errors import VmmError


class FakeGuest:
    """A guest agent on a unix socket that, like QEMU's, serves one client at a time.

    Each request is answered after a short pause, so interleaved writes from two clients
    would show up as a request it cannot parse or an answer for the wrong client.
    """

    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.seen: list[dict[str, object]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        client, _ = self.server.accept()
        with client, client.makefile("rwb") as stream:
            for line in stream:
                request = json.loads(line)
                self.seen.append(request)
                time.sleep(0.01)
                reply = {"ok": True, "echo": request.get("n")}
                stream.write(json.dumps(reply).encode() + b"\n")
                stream.flush()


@pytest.fixture
def owner() -> Iterator[tuple[ChannelOwner, FakeGuest]]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="owner-", dir="/tmp") as tmp:
        guest = FakeGuest(Path(tmp) / "agent.sock")
        channel = AgentChannelClient(Path(tmp) / "agent.sock", time.monotonic() + 5)
        owner = ChannelOwner(channel, Path(tmp) / "control.sock")
        owner.serve()
        yield owner, guest
        owner.close()
        channel.close()


def test_concurrent_clients_each_get_their_own_answers(
    owner: tuple[ChannelOwner, FakeGuest],
) -> None:
    channel_owner, guest = owner
    wrong: list[object] = []

    def client(base: int) -> None:
        with OwnerClient(channel_owner.control) as asker:
            for n in range(base, base + 10):
                answer = asker.ask("status", 5, n=n)["echo"]
                if answer != n:
                    wrong.append((n, answer))

    threads = [threading.Thread(target=client, args=(base,)) for base in (0, 100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert sorted(int(str(r["n"])) for r in guest.seen) == sorted(
        n for base in (0, 100, 200) for n in range(base, base + 10)
    )
    assert all(r["op"] == "status" and "wait" not in r for r in guest.seen)


def test_a_client_cannot_shut_the_guest_down_behind_its_service(
    owner: tuple[ChannelOwner, FakeGuest],
) -> None:
    channel_owner, guest = owner
    with OwnerClient(channel_owner.control) as asker, pytest.raises(VmmError, match="owner"):
        asker.ask("shutdown")
    assert guest.seen == []


def test_no_control_socket_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VmmError, match="does not answer"):
        OwnerClient(tmp_path / "control.sock")
