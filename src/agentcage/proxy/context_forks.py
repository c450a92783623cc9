"""mitmproxy's `Context.fork` without the server connection it makes and drops.

A fork (the HTTP layer makes one for its connection layer, one per stream, one per
upstream connection) calls `Context.__init__`, which makes a new `Server` (a fresh
UUID, some twenty checked field assignments), and then replaces it with the parent's
server: about 9 us each, two or three times a request, for an object nobody sees.
The fork made here is the one mitmproxy's makes: the same client, options and server
objects, a copy of the layer list. A subclass of `Context` forks its own way.
"""

from __future__ import annotations

from mitmproxy.proxy.context import Context

from agentcage.proxy.mitmproxy_pin import patches_mitmproxy


@patches_mitmproxy
def install() -> None:
    original = Context.fork

    def fork(self: Context) -> Context:
        if type(self) is not Context:
            return original(self)
        made = Context.__new__(Context)
        made.client = self.client
        made.options = self.options
        made.server = self.server
        made.layers = self.layers.copy()
        return made

    Context.fork = fork  # type: ignore[method-assign]
