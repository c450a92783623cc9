from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from urllib.parse import quote

import pytest

from agentcage.policy.decoding import encode_body
from agentcage.policy.types import ControlKind, Verdict
from tests.unit.policy.helpers import ALNUM, fake, frame, policy, request

REAL = "sk-" + "ant-api03-" + fake(ALNUM + "-_", 93) + "AA"
RULES = {"secret_injection": [{"env": "ANTHROPIC_API_KEY", "inject_to": ["anthropic.com"]}]}
EVERYWHERE = {
    "secret_injection": [
        {
            "env": "ANTHROPIC_API_KEY",
            "inject_to": ["anthropic.com"],
            "places": ["headers", "query", "body", "websocket"],
        }
    ]
}
HEADERS = {"x-api-key": "{{ANTHROPIC_API_KEY}}"}
PLACEHOLDER = b"{{ANTHROPIC_API_KEY}}"


def test_placeholder_to_its_host_is_allowed_and_injected() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **RULES)
    sent = request(headers=HEADERS, body=b'{"model": "x"}')
    assert engine.check_request(sent).verdict is Verdict.ALLOW
    out = engine.inject(sent)
    assert out.headers.get("x-api-key") == REAL
    assert out.body == sent.body
    assert sent.headers.get("x-api-key") == "{{ANTHROPIC_API_KEY}}"  # input untouched


def test_placeholder_to_another_host_is_blocked_everywhere() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **RULES)
    for sent in (
        request("api.github.com", headers=HEADERS),
        request("api.github.com", "/x?key={{ANTHROPIC_API_KEY}}"),
        request("api.github.com", "/x?key=%7B%7BANTHROPIC_API_KEY%7D%7D"),
        request("api.github.com", body=b'{"k": "{{ANTHROPIC_API_KEY}}"}'),
        request(
            "api.github.com",
            body=gzip.compress(b"k={{ANTHROPIC_API_KEY}}"),
            headers={"content-encoding": "gzip"},
        ),
        request("notanthropic.com", headers=HEADERS),
    ):
        decision = engine.check_request(sent)
        assert decision.verdict is Verdict.BLOCK, sent
        assert decision.inspector in ("secret-injection", "domain")
    github = engine.check_request(request("api.github.com", headers=HEADERS))
    assert github.inspector == "secret-injection"
    assert "may only go to anthropic.com" in github.reason
    assert REAL not in repr(github)


def test_unset_secret_blocks_its_placeholder() -> None:
    engine = policy({}, **RULES)
    decision = engine.check_request(request(headers=HEADERS))
    assert decision.verdict is Verdict.BLOCK
    assert decision.reason == "secret ANTHROPIC_API_KEY is not set"
    # A request without the placeholder is unaffected.
    assert engine.check_request(request()).verdict is Verdict.ALLOW


def test_inject_query_header_body_and_content_length() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **EVERYWHERE)
    body = json.dumps({"key": "{{ANTHROPIC_API_KEY}}"}).encode()
    sent = request(
        "api.anthropic.com",
        "/v1?k={{ANTHROPIC_API_KEY}}&e=%7B%7BANTHROPIC_API_KEY%7D%7D",
        body=body,
        headers={**HEADERS, "content-length": str(len(body))},
    )
    out = engine.inject(sent)
    assert out.path == f"/v1?k={REAL}&e={REAL}"
    assert json.loads(out.body) == {"key": REAL}
    assert out.headers.get("content-length") == str(len(out.body))


def test_a_placeholder_in_a_compressed_body_is_blocked_where_body_is_a_place() -> None:
    # A server storing the compressed bytes could hand back a form no scrubber matches.
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **EVERYWHERE)
    for coding in ("gzip", "deflate", "br", "zstd", "gzip, br"):
        body = encode_body(b'{"key": "{{ANTHROPIC_API_KEY}}"}', coding)
        sent = request(body=body, headers={"content-encoding": coding})
        decision = engine.check_request(sent)
        assert decision.verdict is Verdict.BLOCK, coding
        assert decision.inspector == "secret-injection"
        assert f"{coding}-compressed body" in decision.reason
        assert "send the body uncompressed" in decision.reason
        assert engine.inject(sent).body == body  # never edited, whatever calls it
    # Uncompressed, the same body is injected.
    plain = request(
        body=b'{"key": "{{ANTHROPIC_API_KEY}}"}', headers={"content-encoding": "identity"}
    )
    assert engine.check_request(plain).verdict is Verdict.ALLOW
    assert REAL.encode() in engine.inject(plain).body


def test_a_compressed_body_where_body_is_not_a_place_is_forwarded_unchanged() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **RULES)
    body = gzip.compress(b'{"key": "{{ANTHROPIC_API_KEY}}"}')
    sent = request(body=body, headers={**HEADERS, "content-encoding": "gzip"})
    assert engine.check_request(sent).verdict is Verdict.ALLOW
    out = engine.inject(sent)
    assert out.body == body
    assert out.headers.get("x-api-key") == REAL


def test_default_places_inject_header_values_only() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **RULES)
    body = b'{"prompt": "the key is sent as {{ANTHROPIC_API_KEY}}"}'
    basic = "Basic " + base64.b64encode(b"x:{{ANTHROPIC_API_KEY}}").decode()
    sent = request(
        path="/v1/{{ANTHROPIC_API_KEY}}?k={{ANTHROPIC_API_KEY}}",
        body=body,
        headers={**HEADERS, "authorization": basic},
    )
    assert engine.check_request(sent).verdict is Verdict.ALLOW
    out = engine.inject(sent)
    assert out.headers.get("x-api-key") == REAL
    credentials = base64.b64decode((out.headers.get("authorization") or "").split()[1])
    assert credentials == f"x:{REAL}".encode()
    # Elsewhere the placeholder travels as the agent wrote it: not injected, not blocked.
    assert out.path == sent.path
    assert out.body == body
    assert engine.inject_frame(frame(PLACEHOLDER)).payload == PLACEHOLDER


def test_the_path_is_never_a_place() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **EVERYWHERE)
    for path in ("/v1/{{ANTHROPIC_API_KEY}}/x", "/v1/%7B%7BANTHROPIC_API_KEY%7D%7D?a=1"):
        sent = request(path=path)
        assert engine.check_request(sent).verdict is Verdict.ALLOW
        assert engine.inject(sent).path == path
    out = engine.inject(request(path="/{{ANTHROPIC_API_KEY}}?k={{ANTHROPIC_API_KEY}}"))
    assert out.path == "/{{ANTHROPIC_API_KEY}}?k=" + quote(REAL, safe="")
    # Toward any other host the path still counts: the placeholder is blocked there.
    elsewhere = engine.check_request(request("api.github.com", "/{{ANTHROPIC_API_KEY}}"))
    assert elsewhere.verdict is Verdict.BLOCK
    assert "URL path" in elsewhere.reason


def test_an_unset_secret_blocks_only_where_it_would_be_injected() -> None:
    engine = policy({}, **RULES)
    assert engine.check_request(request(body=PLACEHOLDER)).verdict is Verdict.ALLOW
    assert engine.check_request(request(headers=HEADERS)).verdict is Verdict.BLOCK


def test_range_headers_are_dropped_toward_hosts_that_may_store_a_value() -> None:
    ranged = {"range": "bytes=0-9", "if-range": '"etag"', "accept": "*/*"}
    stored = policy({"ANTHROPIC_API_KEY": REAL}, **EVERYWHERE)
    out = stored.inject(request(headers=ranged))
    assert [name for name, _ in out.headers] == ["accept"]
    # Other hosts, and hosts that receive the value in headers only, keep them.
    assert stored.inject(request("api.github.com", headers=ranged)).headers.get("range")
    headers_only = policy({"ANTHROPIC_API_KEY": REAL}, **RULES)
    assert headers_only.inject(request(headers=ranged)).headers.get("range") == "bytes=0-9"


def test_inject_leaves_other_hosts_alone() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **RULES)
    sent = request("api.github.com", headers=HEADERS)
    assert engine.inject(sent) is sent


def test_frames_checked_and_injected() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **EVERYWHERE)
    good = frame(b'{"auth": "{{ANTHROPIC_API_KEY}}"}', "ws.anthropic.com")
    assert engine.check_frame(good).verdict is Verdict.ALLOW
    assert REAL.encode() in engine.inject_frame(good).payload
    bad = frame(b'{"auth": "{{ANTHROPIC_API_KEY}}"}', "ws.example.com")
    decision = engine.check_frame(bad)
    assert decision.verdict is Verdict.BLOCK
    assert "websocket message" in decision.reason
    assert engine.inject_frame(bad) is bad


@pytest.mark.parametrize(
    ("control", "place"),
    [("ping", "websocket ping"), ("pong", "websocket pong"), ("close", "websocket close reason")],
)
def test_control_frames_are_checked_and_named(control: ControlKind, place: str) -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **RULES)
    payload = b"{{ANTHROPIC_API_KEY}}"
    bad = dataclasses.replace(frame(payload, "ws.example.com"), control=control)
    decision = engine.check_frame(bad)
    assert decision.verdict is Verdict.BLOCK
    assert place in decision.reason
    leaked = dataclasses.replace(frame(REAL.encode(), "ws.example.com"), control=control)
    assert engine.check_frame(leaked).verdict is Verdict.BLOCK


def test_custom_placeholder() -> None:
    rules = {
        "secret_injection": [
            {"env": "GH", "placeholder": "__GH_TOKEN__", "inject_to": ["github.com"]}
        ]
    }
    engine = policy({"GH": "value-123"}, **rules)
    out = engine.inject(request("api.github.com", headers={"authorization": "token __GH_TOKEN__"}))
    assert out.headers.get("authorization") == "token value-123"
    blocked = engine.check_request(request("example.com", body=b"__GH_TOKEN__"))
    assert blocked.verdict is Verdict.BLOCK


def test_basic_auth_placeholder_is_checked_and_injected() -> None:
    token = "gh" + "p_" + fake(ALNUM, 36)
    rules = {"secret_injection": [{"env": "GITHUB_TOKEN", "inject_to": ["github.com"]}]}
    engine = policy({"GITHUB_TOKEN": token}, **rules)
    basic = "Basic " + base64.b64encode(b"x-access-token:{{GITHUB_TOKEN}}").decode()
    push = request("github.com", "/org/repo.git/git-receive-pack", headers={"Authorization": basic})
    assert engine.check_request(push).verdict is Verdict.ALLOW
    sent = engine.inject(push).headers.get("authorization") or ""
    assert base64.b64decode(sent.split(" ")[1]) == f"x-access-token:{token}".encode()
    elsewhere = engine.check_request(request("example.com", headers={"Authorization": basic}))
    assert elsewhere.verdict is Verdict.BLOCK
    assert elsewhere.inspector == "secret-injection"


def test_form_body_placeholder_percent_encoded() -> None:
    engine = policy({"ANTHROPIC_API_KEY": REAL}, **EVERYWHERE)
    body = b"client_secret=%7B%7BANTHROPIC_API_KEY%7D%7D&grant_type=x"
    form = "application/x-www-form-urlencoded"
    out = engine.inject(request(body=body, content_type=form))
    assert out.body == b"client_secret=" + quote(REAL, safe="").encode() + b"&grant_type=x"
    leak = engine.check_request(request("example.com", body=body, content_type=form))
    assert leak.verdict is Verdict.BLOCK
    assert "percent-encoded body" in leak.reason


def test_a_value_with_a_line_break_is_never_written_into_a_header() -> None:
    engine = policy({"ANTHROPIC_API_KEY": "abc\r\nX-Evil: 1"}, **RULES)
    out = engine.inject(request(headers=HEADERS, body=b'{"k": "{{ANTHROPIC_API_KEY}}"}'))
    assert out.headers.get("x-api-key") == "{{ANTHROPIC_API_KEY}}"
    assert all("\n" not in value for _, value in out.headers)
