"""Read an agent-egress-bench checkout: its cases, and which of them a proxy can replay.

The corpus (github.com/luckyPipewrench/agent-egress-bench, Apache-2.0) is read from
the path given, never copied into this project. A case is one JSON file under
`cases/` with an `input_type`, a `payload` and an `expected_verdict`; those whose
input is an HTTP request (`url`, `request_body`, `header`) or WebSocket frames
(`websocket_frame`) are replayed through the proxy. The rest need a part agentcage
does not have, and are listed with the reason.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# input_type -> why agentcage cannot apply such a case
NOT_APPLICABLE = {
    "mcp_tool_call": "MCP tool calls (agentcage proxies HTTP and WebSocket, not MCP stdio)",
    "mcp_tool_result": "MCP tool results",
    "mcp_tool_definition": "MCP tool definitions",
    "mcp_tool_sequence": "MCP tool-call sequences",
    "a2a_message": "A2A messages",
    "a2a_agent_card": "A2A agent cards",
    "response_content": "prompt injection in responses (responses are scrubbed of secrets, "
    "not judged for instructions)",
}
# A category whose cases are all shell commands, whatever their transport.
_SHELL = "shell_obfuscation"
REPLAYED = ("url", "request_body", "header", "websocket_frame")


@dataclass(frozen=True)
class WsFrame:
    """One WebSocket frame as the case gives it (the runner masks it)."""

    opcode: str  # text | binary | continuation
    payload: bytes
    fin: bool = True
    rsv1: bool = False


@dataclass(frozen=True)
class Probe:
    """What the agent sends: one HTTP request, or a WebSocket handshake and its frames."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    frames: tuple[WsFrame, ...] = ()

    @property
    def websocket(self) -> bool:
        return self.url.startswith(("ws://", "wss://"))


@dataclass(frozen=True)
class CorpusCase:
    id: str
    category: str
    malicious: bool
    tags: tuple[str, ...]
    why: str
    probe: Probe | None  # None: not applicable
    not_applicable: str = ""  # the reason, when `probe` is None


def load_corpus(root: Path) -> list[CorpusCase]:
    """Every case under `root/cases` (or `root` itself), sorted by category and id."""
    folder = root / "cases" if (root / "cases").is_dir() else root
    files = sorted(folder.rglob("*.json"))
    if not files:
        raise SystemExit(f"no case files under {folder}: give a checkout of agent-egress-bench")
    cases = [_case(json.loads(path.read_text())) for path in files]
    return sorted(cases, key=lambda c: (c.category, c.id))


def _case(data: dict[str, Any]) -> CorpusCase:
    kind = data["input_type"]
    reason = NOT_APPLICABLE.get(kind, "")
    if data["category"] == _SHELL:
        reason = "shell command analysis (agentcage judges traffic, not the commands an agent runs)"
    elif kind not in REPLAYED and not reason:
        reason = f"input type {kind!r} is not one the runner knows"
    return CorpusCase(
        id=data["id"],
        category=data["category"],
        malicious=data["expected_verdict"] == "block",
        tags=tuple(data.get("capability_tags", ())),
        why=data.get("why_expected", ""),
        probe=None if reason else _probe(kind, data["payload"]),
        not_applicable=reason,
    )


def _probe(kind: str, payload: dict[str, Any]) -> Probe:
    if kind == "websocket_frame":
        frames = tuple(_frame(f) for f in payload.get("frames", ()))
        return Probe("GET", payload["url"], frames=frames)
    headers = [(str(k), str(v)) for k, v in (payload.get("headers") or {}).items()]
    if payload.get("content_type") and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", payload["content_type"]))
    body = str(payload.get("body", "")).encode()
    return Probe(payload.get("method", "GET"), payload["url"], tuple(headers), body)


def _frame(data: dict[str, Any]) -> WsFrame:
    text = str(data.get("payload", ""))
    payload = base64.b64decode(text) if data.get("encoding") == "base64" else text.encode()
    return WsFrame(
        opcode=str(data.get("opcode", "text")),
        payload=payload,
        fin=bool(data.get("fin", True)),
        rsv1=bool(data.get("rsv1", False)),
    )
