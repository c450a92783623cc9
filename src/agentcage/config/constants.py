"""Values of the schema that serving code uses as they are, without the schema.

The serving proxy never imports pydantic (proxy/checked_config.py): the ports, protocols
and places it needs live here, and the schema's sections import them from here.
"""

from __future__ import annotations

from typing import Literal

Protocol = Literal["http", "https", "opaque"]
# Open to every admitted host on the transparent path (docs/transparent.md).
WEB_PORTS: dict[int, Protocol] = {80: "http", 443: "https"}
# Where the steering in the proxy's namespace sends every other flow of the agent, TCP
# and UDP alike, to be refused and audited (proxy/deny.py); no port rule may take it.
DENY_PORT = 8079
# Places a host may store and later serve back in pieces or compressed, where the
# response scrubber cannot recognise the value.
ECHO_PLACES: frozenset[str] = frozenset({"query", "body", "websocket"})
