"""The inbound port relay, on loopback."""

from __future__ import annotations

import asyncio
import socket

from agentcage.cage import forward


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_relays_both_directions() -> None:
    async def scenario() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read(100)
            writer.write(b"agent says " + data)
            await writer.drain()
            writer.close()

        port = _free_port()
        agent = await asyncio.start_server(echo, "127.0.0.2", port)
        relay = asyncio.create_task(forward.serve("127.0.0.2", [port], listen="127.0.0.1"))
        for _ in range(50):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.02)
        writer.write(b"hello")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        relay.cancel()
        agent.close()
        return answer

    assert asyncio.run(scenario()) == b"agent says hello"


def test_usage() -> None:
    assert forward.main(["10.0.0.1"]) == 2
    assert forward.main(["10.0.0.1", "http"]) == 2
