"""Connect upstream only to an address the proxy resolved and vetted itself.

The gate already refused names that resolve to internal addresses, with a clear
403. This addon is the enforcement point: at `server_connect` it resolves the
name again (from the same cache), refuses what the guard refuses, and points the
connection at the vetted IP, so what was checked is what is connected to. The
name is put back once connected: mitmproxy reuses upstream connections by
address, and the TLS SNI was already taken from the name.
"""

from __future__ import annotations

import logging

from mitmproxy.proxy import server_hooks

from agentcage.proxy.egress import ResolveError
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)


class EgressPinning:
    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder
        self._names: dict[str, tuple[str, int]] = {}

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        try:
            if server.address is None:
                server.error = "no destination address"
                return
            if server.via is not None:
                server.error = "upstream proxies are not supported"
                return
            host, port = server.address
            runtime = self._holder.current
            address = runtime.guard.pick(host, await runtime.resolver.resolve(host))
            self._names[server.id] = (host, port)
            server.address = (str(address), port)
        except ResolveError as exc:
            server.error = f"egress refused: {exc}"
        except Exception as exc:
            logger.exception("egress pinning failed")
            server.error = f"egress check failed: {type(exc).__name__}"

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        name = self._names.pop(data.server.id, None)
        if name is not None:
            # mitmproxy forbids moving an open connection; this only relabels it with
            # the name it was opened for (peername keeps the vetted IP), so that the
            # next request to that name reuses it instead of opening another.
            object.__setattr__(data.server, "address", name)

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        name = self._names.pop(data.server.id, None)
        if name is not None:
            data.server.address = name
