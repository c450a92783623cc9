"""The public-corpus runner's pure parts: reading cases, what applies, configs, addresses.

The cases here are written for the test in the corpus's format; the corpus itself is
never copied into this project.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from bench.egress.corpus import WsFrame, load_corpus
from bench.egress.replay import frame_bytes
from bench.egress.sandbox import OUTSIDE, extra_addresses, ipv4_of, settings

CASES = {
    "url/u-1.json": {
        "category": "url",
        "input_type": "url",
        "expected_verdict": "block",
        "payload": {"method": "GET", "url": "https://evil.example.com/x?k=v"},
    },
    "headers/h-1.json": {
        "category": "headers",
        "input_type": "header",
        "expected_verdict": "allow",
        "payload": {"method": "POST", "url": "https://api.example.com/", "headers": {"X-A": "1"},
                    "content_type": "application/json", "body": "{}"},
    },
    "ws/w-1.json": {
        "category": "websocket_dlp",
        "input_type": "websocket_frame",
        "expected_verdict": "block",
        "payload": {"url": "wss://example.com/ws", "frames": [
            {"opcode": "binary", "encoding": "base64", "payload": base64.b64encode(b"hi").decode()},
            {"opcode": "text", "fin": False, "payload": "ab"},
            {"opcode": "continuation", "rsv1": True, "payload": "cd"},
        ]},
    },
    "mcp/m-1.json": {
        "category": "mcp_input", "input_type": "mcp_tool_call", "expected_verdict": "block",
        "payload": {"jsonrpc_messages": []},
    },
    "shell/s-1.json": {
        "category": "shell_obfuscation", "input_type": "mcp_tool_call",
        "expected_verdict": "block", "payload": {},
    },
}  # fmt: skip


def _corpus(tmp_path: Path) -> Path:
    for name, case in CASES.items():
        path = tmp_path / "cases" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"id": path.stem, "why_expected": "w", **case}))
    return tmp_path


def test_cases_are_read_and_sorted_into_replayed_and_not_applicable(tmp_path: Path) -> None:
    cases = {c.id: c for c in load_corpus(_corpus(tmp_path))}
    assert cases["u-1"].probe is not None and cases["u-1"].malicious
    header = cases["h-1"].probe
    assert header is not None and not cases["h-1"].malicious
    assert header.headers == (("X-A", "1"), ("Content-Type", "application/json"))
    assert header.body == b"{}"
    ws = cases["w-1"].probe
    assert ws is not None and ws.websocket
    assert [(f.opcode, f.payload, f.fin, f.rsv1) for f in ws.frames] == [
        ("binary", b"hi", True, False),
        ("text", b"ab", False, False),
        ("continuation", b"cd", True, True),
    ]
    assert cases["m-1"].probe is None and "MCP" in cases["m-1"].not_applicable
    assert cases["s-1"].probe is None and "shell" in cases["s-1"].not_applicable


def test_frames_are_masked_with_the_bits_the_case_sets() -> None:
    raw = frame_bytes(WsFrame("continuation", b"cd", fin=False, rsv1=True))
    assert raw[0] == 0x40  # no FIN, RSV1, opcode 0
    assert raw[1] == 0x80 | 2  # masked, two bytes
    mask, body = raw[2:6], raw[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == b"cd"


def test_configs_and_the_addresses_loopback_must_hold() -> None:
    allowlist, allow_all, *rest = settings(["github.com", "github.com"], ["bad.example.net"])
    assert allowlist.allow == ("github.com",)
    assert allow_all.allow is None and allow_all.block == ("bad.example.net",)
    assert "block: [bad.example.net]" in allow_all.yaml("127.0.0.1:53")
    assert [s.documentation for s in (allow_all, *rest)] == ["skip", "block"]
    assert "documentation_values: block" in rest[0].yaml("127.0.0.1:53")
    urls = ["http://0x7f000001/a", "http://10.0.0.1/", "http://169.254.169.254/", "https://x.com/"]
    assert extra_addresses(urls) == [OUTSIDE, "10.0.0.1", "169.254.169.254"]
    assert str(ipv4_of("0177.0.0.1")) == "127.0.0.1" and ipv4_of("example.com") is None
