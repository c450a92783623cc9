"""Arbitrary requests and frames: built-in inspectors decide, they never crash.

The chain turns a crash into a block (fail closed), which would hide a bug as a
false block; so here no finding may be an `inspector-error`.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcage.policy.engine import Policy
from agentcage.policy.types import Decision, Frame, Headers, Request
from tests.unit.policy.helpers import config

ENGINE = Policy.from_config(
    config(
        domains={"allow": ["example.com", "10.0.0.0/8"]},
        secret_injection=[
            {
                "env": "TOKEN",
                "inject_to": ["example.com"],
                "places": ["headers", "query", "body", "websocket"],
            }
        ],
        content_type={"action": "block"},
        entropy={"action": "block", "min_body_bytes": 16, "segment_min_length": 8},
        rate_limit=False,
    ),
    {"TOKEN": "real-token-value-123"},
    environ={},
)

text = st.text(max_size=60)
hosts = st.one_of(
    st.sampled_from(["example.com", "api.example.com", "10.1.2.3", "0x7f.1", "[::1]", "é.com"]),
    st.text(max_size=30),
)
codings = st.sampled_from(["", "gzip", "br", "zstd", "deflate", "gzip, br", "identity", "x"])
ctypes = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "image/png", ""]
)
header_values = st.one_of(text, st.just("Basic e3tUT0tFTn19"), st.just("{{TOKEN}}"))


def _no_crash(decision: Decision) -> None:
    assert not [f for f in decision.findings if f.reason.startswith("inspector-error")], decision


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    host=hosts,
    path=st.one_of(text.map(lambda s: "/" + s), st.just("/x?a=%7B%7BTOKEN%7D%7D&b=%zz")),
    body=st.one_of(st.binary(max_size=2000), st.just(b"{{TOKEN}}")),
    coding=codings,
    ctype=ctypes,
    value=header_values,
)
def test_requests(host: str, path: str, body: bytes, coding: str, ctype: str, value: str) -> None:
    headers = [("content-type", ctype), ("authorization", value)]
    if coding:
        headers.append(("content-encoding", coding))
    request = Request("POST", "https", host, 443, path, Headers(tuple(headers)), body)
    decision = ENGINE.check_request(request)
    _no_crash(decision)
    if decision.verdict.value != "block":
        ENGINE.inject(request)


@settings(max_examples=200)
@given(host=hosts, payload=st.binary(max_size=2000), is_text=st.booleans(), out=st.booleans())
def test_frames(host: str, payload: bytes, is_text: bool, out: bool) -> None:
    frame = Frame(host, 443, "/ws", payload, is_text, from_client=out)
    _no_crash(ENGINE.check_frame(frame))
    ENGINE.inject_frame(frame)


@settings(max_examples=200)
@given(st.binary(max_size=500))
def test_scrub_is_total(data: bytes) -> None:
    assert ENGINE.scrub(data + b"real-token-value-123").count(b"real-token-value-123") == 0
    ENGINE.scrub_text(data.decode("utf-8", "replace"))


secret_values = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=12, max_size=80
)


@settings(max_examples=200)
@given(value=secret_values, before=st.binary(max_size=100), after=st.binary(max_size=100))
def test_scrub_undoes_inject(value: str, before: bytes, after: bytes) -> None:
    engine = Policy.from_config(
        config(secret_injection=[{"env": "K", "inject_to": ["example.com"], "places": ["body"]}]),
        {"K": value},
        environ={},
    )
    body = before + b"{{K}}" + after
    sent = engine.inject(Request("POST", "https", "api.example.com", 443, "/", Headers(), body))
    assert value.encode() in sent.body
    assert value.encode() not in engine.scrub(sent.body)
