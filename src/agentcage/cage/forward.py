"""Inbound port relay for a cage's published ports (`container.ports`).

Podman cannot publish a port of a container that is only on an internal network (there
is no route from the host to it). A small sidecar on both networks publishes the port
instead and relays each inbound connection to the agent:

    python -m agentcage.cage.forward 10.213.0.100 18789 [PORT ...]

It only accepts connections and only connects to the agent's address, so it gives the
agent no way to open a connection of its own. Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

Relay = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


def _handler(target: str, port: int) -> Relay:
    async def relay(client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            agent_reader, agent = await asyncio.wait_for(
                asyncio.open_connection(target, port), timeout=10
            )
        except (OSError, TimeoutError):
            client.close()
            return
        await asyncio.gather(_pipe(client_reader, agent), _pipe(agent_reader, client))

    return relay


async def serve(target: str, ports: list[int], listen: str = "0.0.0.0") -> None:
    servers = [await asyncio.start_server(_handler(target, p), listen, p) for p in ports]
    print(f"relaying ports {', '.join(map(str, ports))} to {target}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not all(a.isdigit() for a in argv[1:]):
        print("usage: python -m agentcage.cage.forward AGENT_IP PORT [PORT ...]", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(argv[0], [int(p) for p in argv[1:]]))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
