"""Per-flow state is one typed object under one metadata key, whichever addon keeps it."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from mitmproxy.test import taddons, tutils

from agentcage.proxy.closing_lines import ClosingLines
from agentcage.proxy.flow_state import KEY, FlowState, flow_state
from agentcage.proxy.gate import RequestGate
from agentcage.proxy.scrubbing import ResponseScrubbing
from agentcage.proxy.streaming import ResponseStreaming
from tests.unit.proxy.test_fail_closed import AllowAll, MemoryAudit, _flow, holder

PROXY = Path(__file__).resolve().parents[3] / "src" / "agentcage" / "proxy"


def test_the_state_is_made_once_and_shared() -> None:
    flow = _flow()
    state = flow_state(flow)
    assert state == FlowState() and flow_state(flow) is state
    assert list(flow.metadata) == [KEY]


def test_a_whole_exchange_keeps_its_state_under_one_key() -> None:
    runtime = holder(AllowAll())
    audit = MemoryAudit()
    flow = _flow()
    with taddons.context():
        asyncio.run(RequestGate(runtime, audit).request(flow))
        flow.response = tutils.tresp(content=b"payload")
        del flow.response.headers["content-length"]  # streamed: no length
        for addon in (ResponseStreaming(runtime), ResponseScrubbing(runtime)):
            addon.responseheaders(flow)
        assert callable(flow.response.stream)
        flow.response.stream(b"payload")
        flow.response.stream(b"")
        ClosingLines(runtime, audit).response(flow)
    state = flow_state(flow)
    assert list(flow.metadata) == [KEY]
    assert state.gate is not None and state.gate.path == "/path"
    assert state.audited and state.streamed_bytes == len(b"payload")
    assert state.scrubbed_headers is flow.response.headers.fields
    assert audit.lines[-1]["bytes_in"] == len(b"payload")


def test_only_flow_state_touches_flow_metadata() -> None:
    touching = sorted(
        path.name
        for path in PROXY.glob("*.py")
        if any(
            isinstance(node, ast.Attribute) and node.attr == "metadata"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert touching == ["flow_state.py"]
