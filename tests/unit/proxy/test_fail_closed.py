"""Every hook that fails must block: mitmproxy itself would log the error and go on."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from agentcage.audit.writer import AuditWriter
from agentcage.config import LoadContext, parse_config
from agentcage.policy.scrubbing.echoes import EchoGuard
from agentcage.policy.types import Decision, Verdict
from agentcage.proxy.closing_lines import ClosingLines
from agentcage.proxy.egress import AddressGuard, Resolver
from agentcage.proxy.flow_state import GateNote, flow_state
from agentcage.proxy.gate import RequestGate
from agentcage.proxy.pinning import EgressPinning
from agentcage.proxy.runtime import Runtime, RuntimeHolder, Sources
from agentcage.proxy.scrubbing import ResponseScrubbing
from agentcage.proxy.wscontrol import ControlFrame, ControlFrameGate

CONFIG = "name: unit\ncontainer: {image: x}\ndomains: {allow: [example.com]}\n"


class BrokenPolicy:
    """Raises from every method, as a bug in the engine would."""

    def __getattr__(self, name: str) -> Any:
        def broken(*args: object) -> Any:
            raise RuntimeError(f"{name} is broken")

        return broken


class AllowAll:
    def check_request(self, request: object) -> Decision:
        return Decision(Verdict.ALLOW)

    def check_frame(self, frame: object) -> Decision:
        return Decision(Verdict.ALLOW)

    def inject(self, request: Any) -> Any:
        return request

    def scrub(self, data: bytes) -> bytes:
        return data

    def scrub_text(self, text: str) -> str:
        return text

    def echo_guard(self, host: str, *, partial: bool = False) -> EchoGuard:
        return EchoGuard(self)


class Resolving(Resolver):
    def __init__(self, error: Exception | None = None) -> None:
        self._error = error

    async def resolve(self, host: str) -> tuple[Any, ...]:
        if self._error:
            raise self._error
        return (ipaddress.ip_address("93.184.216.34"),)


def holder(policy: object, resolver: Resolver | None = None, extra: str = "") -> RuntimeHolder:
    config = parse_config(CONFIG + extra, "unit.yaml", context=LoadContext())
    runtime = Runtime(config, policy, AddressGuard(), resolver or Resolving())  # type: ignore[arg-type]
    return RuntimeHolder(Sources(Path("unit.yaml")), runtime)


class MemoryAudit(AuditWriter):
    def __init__(self, fail: bool = False) -> None:
        self.lines: list[dict[str, Any]] = []
        self._fail = fail

    def write(self, record: Any) -> None:
        if self._fail:
            raise OSError(28, "No space left on device")
        self.lines.append(json.loads(record.to_json()))


def _flow() -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.host, flow.request.port, flow.request.scheme = "example.com", 80, "http"
    flow.request.headers["host"] = "example.com"
    return flow


def test_policy_error_blocks_the_request() -> None:
    audit = MemoryAudit()
    gate = RequestGate(holder(BrokenPolicy()), audit)
    flow = _flow()
    with taddons.context():
        asyncio.run(gate.request(flow))
    assert flow.response is not None and flow.response.status_code == 403
    assert json.loads(flow.response.content or b"")["inspector"] == "proxy"
    assert audit.lines[0]["verdict"] == "block"
    assert "broken" not in audit.lines[0]["reason"]  # the type, not the message


def test_resolver_crash_blocks_the_request() -> None:
    gate = RequestGate(holder(AllowAll(), Resolving(ValueError("boom"))), MemoryAudit())
    flow = _flow()
    with taddons.context():
        asyncio.run(gate.request(flow))
    assert flow.response is not None and flow.response.status_code == 403


def test_scrub_error_replaces_the_response() -> None:
    scrubber = ResponseScrubbing(holder(BrokenPolicy()))
    flow = _flow()
    flow.response = tutils.tresp(content=b"secret?")
    with taddons.context():
        scrubber.response(flow)
    assert flow.response.status_code == 502
    assert b"secret?" not in (flow.response.content or b"")


def test_undecodable_compressed_response_is_not_passed_unchecked() -> None:
    scrubber = ResponseScrubbing(holder(AllowAll()))
    flow = _flow()
    flow.response = tutils.tresp(content=b"")
    flow.response.headers["content-encoding"] = "gzip"
    flow.response.raw_content = b"not gzip at all"
    with taddons.context():
        scrubber.response(flow)
    assert flow.response.status_code == 502


def test_a_refused_response_is_audited_as_a_block_even_when_allows_are_not() -> None:
    runtime = holder(AllowAll(), extra="logging: {allowed_requests: false}\n")
    audit = MemoryAudit()
    flow = _flow()
    flow_state(flow).gate = GateNote(Decision(Verdict.ALLOW), "/")  # as the gate left it
    flow.response = tutils.tresp(content=b"")
    flow.response.headers["content-encoding"] = "gzip"
    flow.response.raw_content = b"not gzip at all"
    with taddons.context():
        ResponseScrubbing(runtime).response(flow)
        ClosingLines(runtime, audit).response(flow)
    [line] = audit.lines
    assert (line["kind"], line["verdict"], line["inspector"]) == ("response", "block", "scrub")
    assert "could not be checked for secrets" in line["reason"]


def test_unwritable_audit_log_withholds_the_response() -> None:
    closing = ClosingLines(holder(AllowAll()), MemoryAudit(fail=True))
    flow = _flow()
    flow_state(flow).gate = GateNote(Decision(Verdict.ALLOW), "/")
    flow.response = tutils.tresp(content=b"payload")
    with taddons.context():
        closing.response(flow)
    assert flow.response.status_code == 502


def test_unwritable_audit_log_stops_the_request_before_it_leaves() -> None:
    gate = RequestGate(holder(AllowAll()), MemoryAudit(fail=True))
    flow = _flow()
    with taddons.context():
        asyncio.run(gate.request(flow))
    assert flow.response is not None and flow.response.status_code == 503
    assert json.loads(flow.response.content or b"")["inspector"] == "audit"


def test_decision_line_is_written_before_the_request_leaves() -> None:
    audit = MemoryAudit()
    gate = RequestGate(holder(AllowAll()), audit)
    flow = _flow()
    with taddons.context():
        asyncio.run(gate.request(flow))
    assert flow.response is None  # forwarded next, with its line already written
    assert [(line["kind"], line["verdict"]) for line in audit.lines] == [("http", "allow")]
    flow.response = tutils.tresp(content=b"payload")
    with taddons.context():
        ClosingLines(holder(AllowAll()), audit).response(flow)
    closing = audit.lines[-1]
    assert closing["kind"] == "response" and closing["extra"] == {"status": 200}
    assert closing["bytes_in"] == len(b"payload")


@pytest.mark.parametrize("error", [RuntimeError("bug"), None])
def test_pinning_refuses_when_it_cannot_vet(error: Exception | None) -> None:
    resolver = Resolving(error) if error else Resolving()
    pinning = EgressPinning(holder(AllowAll(), resolver))
    flow = _flow()
    server = flow.server_conn
    server.address = ("example.com", 80)
    data = type("Data", (), {"server": server, "client": flow.client_conn})()
    with taddons.context():
        asyncio.run(pinning.server_connect(data))  # type: ignore[arg-type]
    if error:
        assert server.error and "egress check failed" in server.error
    else:
        assert server.error is None and server.address == ("93.184.216.34", 80)


def test_audit_log_to_stdout_writes_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from agentcage.audit.record import AuditRecord

    log = AuditWriter(None)
    log.write(AuditRecord(kind="http", verdict="allow", host="example.com"))
    assert json.loads(capsys.readouterr().out)["host"] == "example.com"


@pytest.mark.parametrize(
    ("policy", "audit", "why"),
    [
        (BrokenPolicy(), MemoryAudit(), "inspection error: RuntimeError"),
        (AllowAll(), MemoryAudit(fail=True), "inspection error: OSError"),
    ],
)
def test_control_frame_is_not_relayed_when_inspection_fails(
    policy: object, audit: MemoryAudit, why: str
) -> None:
    gate = ControlFrameGate(holder(policy), audit)
    control = ControlFrame(tflow.twebsocketflow(), "ping", True, b"payload")
    gate.websocket_control(control)
    assert control.relay is None
    assert control.close_reason == f"blocked by agentcage (proxy): {why}"


def test_control_frame_is_relayed_once_its_line_is_written() -> None:
    audit = MemoryAudit()
    gate = ControlFrameGate(holder(AllowAll()), audit)
    control = ControlFrame(tflow.twebsocketflow(), "close", False, b"bye", 1000)
    gate.websocket_control(control)
    assert control.relay == b"bye"
    [line] = audit.lines
    assert line["extra"] == {"direction": "to_client", "frame": "close", "close_code": 1000}
