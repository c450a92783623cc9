from __future__ import annotations

import gzip
import os

from agentcage.policy.multipart import boundary_of, parts
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import policy, request

BOUNDARY = "----agentcage7MA4YWxkTrZu0gW"


def _form(*fields: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, ctype, data in fields:
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"'
        if ctype:
            head += f'; filename="{name}.bin"\r\nContent-Type: {ctype}'
        body += head.encode() + b"\r\n\r\n" + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def test_boundary_and_parts() -> None:
    assert boundary_of(f"multipart/form-data; boundary={BOUNDARY}") == BOUNDARY
    assert boundary_of('multipart/form-data; boundary="a b"') == "a b"
    assert boundary_of("multipart/form-data") is None
    body = _form(("a", None, b"1"), ("f", "Application/Gzip; x=1", b"\x1f\x8b"))
    got = list(parts(body, BOUNDARY))
    assert [(p.name, p.content_type, p.data) for p in got] == [
        ("a", "", b"1"),
        ("f", "application/gzip", b"\x1f\x8b"),
    ]


def test_uploaded_archive_passes_but_dense_text_field_does_not() -> None:
    engine = policy(entropy={"action": "block"}, content_type=False)
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    upload = _form(
        ("version", None, b"1.0.0"),
        ("content", "application/octet-stream", gzip.compress(os.urandom(50_000))),
    )
    ok = engine.check_request(request("example.com", body=upload, content_type=ctype))
    assert ok.verdict is Verdict.ALLOW
    smuggled = _form(("comment", None, os.urandom(4096)), ("content", "image/png", b"x"))
    decision = engine.check_request(request("example.com", body=smuggled, content_type=ctype))
    assert decision.verdict is Verdict.BLOCK
    assert "multipart part 'comment'" in decision.reason


def test_multipart_without_boundary_is_judged_whole() -> None:
    engine = policy(entropy={"action": "block"}, content_type=False)
    decision = engine.check_request(
        request(body=os.urandom(4096), content_type="multipart/form-data")
    )
    assert decision.verdict is Verdict.BLOCK
