"""Entropy and content-type checks, including what must never be blocked."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import uuid
import zlib

from agentcage.policy.shannon import sampled_entropy, shannon_entropy
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import frame, policy, request

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(60_000)
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(60_000)


def _chat(content: object) -> bytes:
    return json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": content}],
        }
    ).encode()


def test_entropy_math() -> None:
    assert shannon_entropy(b"") == 0.0
    assert shannon_entropy(b"aaaa") == 0.0
    assert shannon_entropy(bytes(range(256))) == 8.0
    assert abs(shannon_entropy(b"ab" * 10) - 1.0) < 1e-9
    big = os.urandom(1_000_000)
    # A 2 KiB sample reads random bytes ~0.09 bits low (small-sample bias), with
    # a spread of ~0.02: still far above every threshold (7.0 by default).
    assert sampled_entropy(big) > 7.8


def test_sampled_entropy_of_a_large_text_body_is_close_to_the_exact_value() -> None:
    text = _chat("".join(f"line {n}: value={n * 7919 % 1000} ok\n" for n in range(40_000)))
    assert len(text) > 500_000
    assert abs(sampled_entropy(text) - shannon_entropy(text)) < 0.15


def test_high_entropy_body_is_flagged_by_default_and_blockable() -> None:
    body = os.urandom(4096)
    flagged = policy().check_request(request(body=body, content_type="text/plain"))
    assert flagged.verdict is Verdict.FLAG
    assert {f.inspector for f in flagged.findings} >= {"entropy", "content-type"}
    strict = policy(entropy={"action": "block"}, content_type=False)
    decision = strict.check_request(request(body=body, content_type="text/plain"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "entropy"


def test_exempt_content_types_and_small_bodies_skip_entropy() -> None:
    engine = policy(entropy={"action": "block"}, content_type=False)
    body = os.urandom(4096)
    for ctype in ("image/png", "application/octet-stream", "application/zip"):
        assert engine.check_request(request(body=body, content_type=ctype)).verdict is Verdict.ALLOW
    small = os.urandom(100)
    assert engine.check_request(request(body=small, content_type="x/y")).verdict is Verdict.ALLOW


def test_compressed_body_is_measured_after_decoding() -> None:
    engine = policy(entropy={"action": "block"}, content_type={"action": "block"})
    text = _chat("please summarise this file " * 200)
    sent = request(body=zlib.compress(text), headers={"content-encoding": "deflate"})
    assert engine.check_request(sent).verdict is Verdict.ALLOW


def test_high_entropy_url_parts() -> None:
    engine = policy(entropy={"action": "block"})
    # Seeded: about 1 random blob in 5,000 holds a credential format by chance, and then
    # the secrets inspector names it first; this test is about the entropy rule.
    blob = base64.urlsafe_b64encode(random.Random(75).randbytes(60)).decode().rstrip("=")
    for path in (f"/exfil/{blob}", f"/search?q={blob}&page=2"):
        decision = engine.check_request(request("example.com", path, method="GET"))
        assert decision.verdict is Verdict.BLOCK, path
        assert decision.rules == ("url-entropy",)


def test_binary_declared_as_json_is_flagged() -> None:
    engine = policy(content_type={"action": "block"}, entropy=False)
    decision = engine.check_request(request(body=b'{"a": "\x00\x01\x02"}'))
    assert decision.verdict is Verdict.BLOCK
    assert decision.rules == ("binary-as-text",)
    latin = engine.check_request(request(body=b'{"a": "\xff\xfe"}', content_type="text/plain"))
    assert latin.rules == ("binary-as-text",)


def test_base64_blob_in_text_is_flagged() -> None:
    blob = base64.b64encode(os.urandom(600)).decode()
    engine = policy(content_type={"action": "block"}, entropy=False)
    decision = engine.check_request(request(body=json.dumps({"data": blob}).encode()))
    assert decision.verdict is Verdict.BLOCK
    assert decision.rules == ("base64-blob",)
    ws = engine.check_frame(frame(json.dumps({"data": blob}).encode()))
    assert ws.verdict is Verdict.BLOCK
    off = policy(content_type={"action": "block", "detect_base64": False}, entropy=False)
    assert (
        off.check_request(request(body=json.dumps({"d": blob}).encode())).verdict is Verdict.ALLOW
    )


def test_llm_image_requests_pass_even_in_block_mode() -> None:
    engine = policy(content_type={"action": "block"}, entropy={"action": "block"})
    anthropic = _chat(
        [
            {
                "type": "image",
                "source": {
                    "type": "base64",
                    "media_type": "image/png",
                    "data": base64.b64encode(PNG).decode(),
                },
            },
            {"type": "text", "text": "What is in this screenshot?"},
        ]
    )
    openai = _chat(
        [
            {
                "type": "image_url",
                "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()},
            }
        ]
    )
    for body in (anthropic, openai):
        decision = engine.check_request(request(body=body))
        assert decision.verdict is Verdict.ALLOW, decision


def test_normal_traffic_is_never_flagged() -> None:
    engine = policy(content_type={"action": "block"}, entropy={"action": "block"})
    rng = random.Random(3)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(50)]
    shas = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(50)]
    code = "def handler(event):\n    return {'status': 200, 'body': event['body']}\n" * 50
    bodies = [
        _chat("Refactor this function:\n" + code),
        json.dumps({"ids": ids, "commits": shas, "ok": True}).encode(),
        json.dumps({"query": "query { viewer { login } }", "variables": {}}).encode(),
        json.dumps({"ruler": "-" * 400, "table": "|" + "=" * 300 + "|"}).encode(),
        json.dumps({"sha256": hashlib.sha256(b"x").hexdigest() * 10}).encode(),
    ]
    for body in bodies:
        decision = engine.check_request(request(body=body))
        assert decision.verdict is Verdict.ALLOW, decision
    paths = [
        f"/repos/org/repo/commits/{shas[0]}",
        f"/v1/files/{ids[0]}?after={ids[1]}",
        "/search?q=how+to+parse+json+in+python&limit=20",
    ]
    for path in paths:
        decision = engine.check_request(request("api.github.com", path, method="GET"))
        assert decision.verdict is Verdict.ALLOW, decision


def _wrapped(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def test_line_wrapped_base64_is_one_blob() -> None:
    engine = policy(content_type={"action": "block"}, entropy=False)
    wrapped = _wrapped(os.urandom(900))
    as_text = engine.check_request(request(body=wrapped.encode(), content_type="text/plain"))
    assert as_text.rules == ("base64-blob",)
    as_json = engine.check_request(request(body=json.dumps({"file": wrapped}).encode()))
    assert as_json.rules == ("base64-blob",)
    image = json.dumps({"file": _wrapped(PNG[:3000])}).encode()
    assert engine.check_request(request(body=image)).verdict is Verdict.ALLOW
