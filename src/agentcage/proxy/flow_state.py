"""What the addons know about one flow, kept on it as one typed object.

mitmproxy gives every flow a `metadata` dict for addons to share. Ours keep a single
`FlowState` there and reach it only through `flow_state(flow)`, so every piece of
per-flow state is a typed field declared here, whichever addon sets or reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mitmproxy import http

from agentcage.policy.types import Decision

KEY = "agentcage"


@dataclass(frozen=True, slots=True)
class GateNote:
    """What the gate decided, for the lines written after the request left."""

    decision: Decision
    path: str  # as the agent sent it: after injection the flow's path may hold a secret


@dataclass(slots=True)
class FlowState:
    # Set by `RequestGate` once it decided, allowed or blocked.
    gate: GateNote | None = None
    # The flow's closing line is written (or deliberately not): no other addon writes one.
    audited: bool = False
    # (inspector, reason) of a response refused after its request was allowed; the
    # closing line records it as a block.
    response_block: tuple[str, str] | None = None
    # Bytes of a streamed response sent on so far (None: not streamed).
    streamed_bytes: int | None = None
    # The response headers as `ResponseScrubbing` left them: mitmproxy replaces the
    # tuple on every change, so the same object means nothing touched them since.
    scrubbed_headers: tuple[tuple[bytes, bytes], ...] | None = None
    # The response came over a kept upstream connection (`upstream_reuse`).
    pooled: bool = False


def flow_state(flow: http.HTTPFlow) -> FlowState:
    """The flow's state, created empty on first use."""
    state = flow.metadata.get(KEY)
    if not isinstance(state, FlowState):
        state = flow.metadata[KEY] = FlowState()
    return state
