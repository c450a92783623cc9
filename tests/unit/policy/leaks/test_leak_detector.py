"""The leak inspector on whole requests, frames and DNS names."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import random
import re
import urllib.parse
import zlib

import pytest
from bench.exfil.gitpacks import push_body
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.leaks import LeakDetector, LeakSettings, Limits, Protected, canary_value
from agentcage.policy.leaks.detector import _token_pieces
from agentcage.policy.types import Frame, Headers, Request, Verdict

from .conftest import ANTHROPIC, GITHUB, PLACEHOLDER

CANARY = canary_value("openai", "OPENAI_API_KEY", b"cage-seed").encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def detector(protected: list[Protected]) -> LeakDetector:
    canary = Protected("OPENAI_API_KEY", CANARY, "canary", ("api.openai.com",))
    return LeakDetector([*protected, canary], clock=Clock())


def request(
    host: str = "collector.example.net",
    path: str = "/",
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
    method: str = "POST",
) -> Request:
    return Request(method, "https", host, 443, path, Headers(headers), body)


def _multipart(parts: dict[str, bytes], boundary: str = "XyZ") -> bytes:
    out = b""
    for name, data in parts.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'.encode()
        out += b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data) + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _labels(data: bytes) -> str:
    text = data.decode().lower().rstrip("=")
    return ".".join(text[i : i + 40] for i in range(0, len(text), 40))


LEAKS = {
    "path": lambda s: request(path="/u/" + s.decode()),
    "query": lambda s: request(path="/p?q=" + urllib.parse.quote(s) + "&n=1", method="GET"),
    "host-base32": lambda s: request(host=_labels(base64.b32encode(s)) + ".x.example.net"),
    "header": lambda s: request(headers=(("x-debug", s.decode()),)),
    "header-name": lambda s: request(headers=(("x-" + s.hex(), "1"),)),
    "cookie": lambda s: request(
        headers=(("cookie", "sid=1; t=" + base64.urlsafe_b64encode(s).decode()),)
    ),
    "json-body": lambda s: request(body=json.dumps({"note": s.decode()}).encode()),
    "gzip-body": lambda s: request(body=gzip.compress(s), headers=(("content-encoding", "gzip"),)),
    "multipart": lambda s: request(
        body=_multipart({"file": b"report " + s}),
        headers=(("content-type", "multipart/form-data; boundary=XyZ"),),
    ),
}


@pytest.mark.parametrize("where", sorted(LEAKS))
def test_a_known_secret_is_blocked_wherever_it_is_put(detector: LeakDetector, where: str) -> None:
    value = GITHUB if where == "host-base32" else ANTHROPIC
    findings = detector.check_request(LEAKS[where](value))
    assert len(findings) == 1
    finding = findings[0]
    assert finding.verdict is Verdict.BLOCK and finding.inspector == "leaks"
    assert finding.severity == "high"
    # Audit data names the secret, never its value.
    assert value.decode() not in finding.reason and all(
        value.decode() not in r for r in finding.rules
    )


def test_a_secret_reaching_its_own_provider_is_not_a_leak(detector: LeakDetector) -> None:
    home = request(
        "api.anthropic.com",
        "/v1/messages",
        b'{"model":"m"}',
        (("x-api-key", PLACEHOLDER.decode()),),
    )
    assert detector.check_request(home) == []
    sub = request("eu.api.anthropic.com", headers=(("x-api-key", ANTHROPIC.decode()),))
    assert detector.check_request(sub) == []


def test_a_placeholder_sent_elsewhere_is_blocked(detector: LeakDetector) -> None:
    findings = detector.check_request(request(headers=(("x-api-key", PLACEHOLDER.decode()),)))
    assert findings and findings[0].rules == ("placeholder:ANTHROPIC_API_KEY",)


@pytest.mark.parametrize("host", ["api.openai.com", "evil.example"])
def test_a_canary_is_critical_everywhere_even_at_its_provider(
    detector: LeakDetector, host: str
) -> None:
    headers = (("authorization", "Bearer " + CANARY.decode()),)
    findings = detector.check_request(request(host, headers=headers))
    assert findings and findings[0].severity == "critical"
    assert findings[0].rules == ("canary:OPENAI_API_KEY",)


def test_websocket_frames_from_the_agent_are_checked(detector: LeakDetector) -> None:
    payload = json.dumps({"type": "log", "data": ANTHROPIC.hex()}).encode()
    out = Frame("ws.example.net", 443, "/ws", payload, is_text=True)
    assert detector.check_frame(out)
    echoed = Frame("ws.example.net", 443, "/ws", payload, is_text=True, from_client=False)
    assert detector.check_frame(echoed) == []


def test_a_secret_split_over_requests_is_blocked_when_complete(detector: LeakDetector) -> None:
    pieces = [GITHUB[i : i + 8].decode() for i in range(0, len(GITHUB), 8)]
    verdicts = [
        bool(detector.check_request(request(path=f"/c?i={n}&d={p}", method="GET")))
        for n, p in enumerate(pieces)
    ]
    assert verdicts[0] is False and verdicts[-1] is True


# --- traffic that must pass -------------------------------------------------------------


def _png(size: int) -> bytes:
    raw = os.urandom(size)
    return b"\x89PNG\r\n\x1a\n" + zlib.compress(raw)


def _jwt() -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    header = part({"alg": "RS256", "typ": "JWT", "kid": "k1"})
    claims = part({"sub": "user-1", "aud": "api", "exp": 1900000000, "scope": "repo read:org"})
    return f"{header}.{claims}.{base64.urlsafe_b64encode(os.urandom(256)).decode().rstrip('=')}"


BENIGN = {
    "llm-with-image": lambda: request(
        "api.anthropic.com",
        "/v1/messages",
        json.dumps(
            {
                "model": "claude",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"data": base64.b64encode(_png(300_000)).decode()},
                            },
                            {"type": "text", "text": "what is in this image?"},
                        ],
                    }
                ],
            }
        ).encode(),
        (("x-api-key", PLACEHOLDER.decode()), ("content-type", "application/json")),
    ),
    "gzip-telemetry": lambda: request(
        "o1.ingest.sentry.io",
        "/api/1/envelope/",
        gzip.compress(
            json.dumps(
                {"event_id": os.urandom(16).hex(), "spans": [os.urandom(8).hex()] * 200}
            ).encode()
        ),
        (("content-encoding", "gzip"),),
    ),
    "git-push": lambda: request(
        "github.com",
        "/org/repo.git/git-receive-pack",
        b"00a0"
        + os.urandom(20).hex().encode()
        + b" refs/heads/main\x00report-status\n0000PACK"
        + zlib.compress(os.urandom(200_000)),
        (("content-type", "application/x-git-receive-pack-request"),),
    ),
    # A real pack (git index-pack accepts it): read object by object, a binary asset in it.
    "git-push-pack": lambda: request(
        "github.com",
        "/org/repo.git/git-receive-pack",
        push_body(random.Random(), 200_000),
        (("content-type", "application/x-git-receive-pack-request"),),
    ),
    "npm-publish": lambda: request(
        "registry.npmjs.org",
        "/my-pkg",
        json.dumps(
            {
                "name": "my-pkg",
                "_attachments": {
                    "my-pkg-1.0.0.tgz": {
                        "data": base64.b64encode(gzip.compress(os.urandom(50_000))).decode()
                    }
                },
                "versions": {"1.0.0": {"dist": {"shasum": hashlib.sha1(b"x").hexdigest()}}},
            }
        ).encode(),
    ),
    "pypi-upload": lambda: request(
        "upload.pypi.org",
        "/legacy/",
        _multipart(
            {
                "content": gzip.compress(os.urandom(80_000)),
                "sha256_digest": os.urandom(32).hex().encode(),
            }
        ),
        (("content-type", "multipart/form-data; boundary=XyZ"),),
    ),
    "oauth-jwt": lambda: request(
        "api.example.com", "/v1/items?page=2", b"", (("authorization", "Bearer " + _jwt()),), "GET"
    ),
}


@pytest.mark.parametrize("shape", sorted(BENIGN))
def test_ordinary_traffic_passes(detector: LeakDetector, shape: str) -> None:
    for _ in range(3):
        assert detector.check_request(BENIGN[shape]()) == []


def test_a_payload_with_more_layers_than_the_limits_allow_is_blocked(
    protected: list[Protected],
) -> None:
    tight = LeakDetector(protected, LeakSettings(unwrap=Limits(max_views=2)), clock=Clock())
    layered = base64.b64encode(base64.b64encode(base64.b64encode(b"nothing to see here")))
    findings = tight.check_request(request(body=layered))
    assert findings and findings[0].rules == ("undecoded-layers",)
    assert findings[0].verdict is Verdict.BLOCK


# Every delimiter, bytes that `\s` leaves out in bytes patterns (0x1c, 0x85, 0xa0), and
# token bytes.
_PIECE_BYTES = st.sampled_from(
    list(b"&=;,:\"'{}[]<>() \t\n\r\x0b\x0c\x1c\x85\xa0aZ09_-+/.%\\\x00\xff")
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECE_BYTES, max_size=300).map(bytes) | st.binary(max_size=300), st.integers(1, 9))
def test_token_pieces_are_the_runs_between_delimiters(data: bytes, shortest: int) -> None:
    # The regex the pieces were found with before, as the definition of a token.
    token = re.compile(rb"[^&=;,:\"'{}\[\]\s<>()]{%d,}" % shortest)
    assert list(_token_pieces(data, shortest)) == [data, *token.findall(data)]
