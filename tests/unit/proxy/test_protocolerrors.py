"""ProtocolErrors: the answer and line for each error mitmproxy meets itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mitmproxy import connection, flow
from mitmproxy.test import tflow, tutils

from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.protocolerrors import MALFORMED, ErrorAnswer, ProtocolErrors
from tests.unit.proxy.test_fail_closed import AllowAll, MemoryAudit, holder

SECRET = "sk-real-value-0123456789"


class Scrubbing(AllowAll):
    def scrub_text(self, text: str) -> str:
        return text.replace(SECRET, "{{KEY}}")


def _client() -> connection.Client:
    return connection.Client(
        peername=("10.0.0.5", 4321), sockname=("10.0.0.1", 8080), timestamp_start=0
    )


def _answer(
    status: int, message: str, *, request: bool = True, flow_logs: bool = False
) -> ErrorAnswer:
    req = tutils.treq(host="example.com", path="/p") if request else None
    return ErrorAnswer(_client(), req, status, message, flow_logs)


@pytest.mark.parametrize(
    ("status", "message", "expected", "inspector", "reason"),
    [
        (
            400,
            MALFORMED + "Bad HTTP request line: b'x'",
            400,
            "protocol",
            "malformed request: Bad HTTP request line: b'x'",
        ),
        (
            413,
            "Request body exceeds mitmproxy's body_size_limit.",
            413,
            "body-size",
            "request body larger than max_request_body (10485760 bytes)",
        ),
        (
            431,
            "request head still unfinished",
            431,
            "header-size",
            "request head larger than 1048576 bytes",
        ),
        (
            502,
            "egress refused: example.com resolves only to 10.0.0.1",
            403,
            "egress",
            "egress refused: example.com resolves only to 10.0.0.1",
        ),
        (
            502,
            f"Received garbage {SECRET} from server. Disable the option.",
            502,
            "upstream",
            "the upstream server could not be reached or failed: "
            "Received garbage {{KEY}} from server.",
        ),
    ],
)
def test_each_error_gets_its_json_answer(
    status: int, message: str, expected: int, inspector: str, reason: str
) -> None:
    addon = ProtocolErrors(holder(Scrubbing()), MemoryAudit())
    answer = _answer(status, message, flow_logs=True)
    addon.protocol_error(answer)
    assert answer.response.status_code == expected
    assert answer.response.headers["x-agentcage-blocked"] == inspector
    body: dict[str, Any] = json.loads(answer.response.content or b"")
    assert body == {
        "blocked": True,
        "reason": reason,
        "inspector": inspector,
        "host": "example.com",
    }


def test_a_line_is_written_only_where_no_flow_writes_one() -> None:
    audit = MemoryAudit()
    addon = ProtocolErrors(holder(Scrubbing()), audit)
    addon.protocol_error(_answer(400, "x", flow_logs=True))
    assert audit.lines == []
    addon.protocol_error(_answer(400, f"Bad HTTP request line: {SECRET}", request=False))
    [line] = audit.lines
    assert (line["verdict"], line["inspector"], line["client"]) == (
        "block",
        "protocol",
        "10.0.0.5:4321",
    )
    assert line["extra"]["error"] == "Bad HTTP request line: {{KEY}}"


def test_the_default_answer_is_json_too() -> None:
    answer = _answer(502, "anything")
    assert answer.response.headers["content-type"] == "application/json"
    assert json.loads(answer.response.content or b"")["inspector"] == "upstream"


def test_error_hook_claims_only_the_agents_malformed_requests() -> None:
    audit = MemoryAudit()
    addon = ProtocolErrors(holder(Scrubbing()), audit)
    upstream_failure = tflow.tflow()
    upstream_failure.error = flow.Error("[Errno 111] Connect call failed")
    addon.error(upstream_failure)
    assert audit.lines == [] and not flow_state(upstream_failure).audited
    malformed = tflow.tflow()
    malformed.error = flow.Error(MALFORMED + "HTTP/1 protocol error: illegal chunk header")
    addon.error(malformed)
    [line] = audit.lines
    assert (line["verdict"], line["inspector"], line["reason"]) == (
        "block",
        "protocol",
        "malformed request",
    )
    assert flow_state(malformed).audited
