"""Spellings that hide a format from the pattern scanner, read back beneath the views.

A key with a separator after each character, in HTML character references, in
`\\uXXXX` escapes carried inside a JSON string, or in base64 wrapped in lines
(a MIME part) is caught with no value known; the look-alikes of everyday traffic
(rules and leaders, indentation, spaced headings, CSV, certificates, images)
yield nothing a format matches.
"""

from __future__ import annotations

import base64
import json
import random

import pytest

from agentcage.policy.leaks import Unwrapper
from agentcage.policy.leaks.textcodes import separated
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import policy, request

from .conftest import GITHUB

# Everything reachable, no value known: only the formats can decide.
OPEN = {"domains": {"mode": "blocklist", "list": []}, "entropy": False, "content_type": False}


def _decide(body: bytes, content_type: str = "application/json") -> tuple[Verdict, str]:
    headers = {"content-type": content_type}
    decision = policy(**OPEN).check_request(
        request("collector.example.net", body=body, headers=headers)
    )
    return decision.verdict, decision.reason


def _seen(data: bytes) -> bytes:
    return b"\n".join(v.data for v in Unwrapper().views(data))


@pytest.mark.parametrize("sep", ["-", ".", " ", "\n", "_", ":", "|", ","])
def test_a_separator_after_each_character_is_taken_out(sep: str) -> None:
    spaced = sep.join(GITHUB.decode())
    assert separated(spaced.encode()) == GITHUB
    body = json.dumps({"note": spaced}).encode()  # `\n` arrives JSON-escaped
    assert GITHUB in _seen(body)
    verdict, reason = _decide(body)
    assert verdict is Verdict.BLOCK and "github_token" in reason


def test_a_key_that_holds_the_separator_keeps_it() -> None:
    key = b"sk-ant-api03-" + GITHUB[4:]
    assert separated(b"x " + b"-".join(bytes([c]) for c in key) + b" y") == key


@pytest.mark.parametrize(
    "text",
    [
        "---------------------------------------- rule",
        "Chapter 1 .............................................. 7",
        "\n".join(" " * 48 + "return value" for _ in range(20)),
        "S E C T I O N   O N E",  # a spaced heading: no key comes of it
        "1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0",
        "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t",
    ],
)
def test_everyday_separated_text_yields_no_format(text: str) -> None:
    body = json.dumps({"content": text}).encode()
    assert _decide(body)[0] is Verdict.ALLOW


def test_html_character_references_are_decoded() -> None:
    for spell in ("&#%d;", "&#x%x;"):
        body = json.dumps({"html": "".join(spell % c for c in GITHUB)}).encode()
        assert GITHUB in _seen(body)
        assert _decide(body)[0] is Verdict.BLOCK
    page = json.dumps({"html": "caf&#233; &#8212; na&#xEF;ve &#169; 2026"}).encode()
    assert _decide(page)[0] is Verdict.ALLOW


def test_unicode_escapes_inside_a_json_string_are_decoded() -> None:
    escaped = "".join(f"\\u{c:04x}" for c in GITHUB)  # the text `\u0067\u0068...`
    body = json.dumps({"d": escaped}).encode()  # JSON doubles each backslash
    assert GITHUB in _seen(body)
    assert _decide(body)[0] is Verdict.BLOCK


def test_base64_wrapped_in_lines_is_decoded_whole() -> None:
    wrapped = base64.encodebytes(b"report line\n" + GITHUB + b"\n" + b"x" * 40)
    assert wrapped.count(b"\n") >= 2  # the key is cut by a line break
    assert GITHUB in _seen(b"--b\r\n\r\n" + wrapped + b"\r\n--b--\r\n")
    verdict, _ = _decide(b"--b\r\n\r\n" + wrapped + b"\r\n--b--\r\n", "multipart/form-data")
    assert verdict is Verdict.BLOCK


def test_wrapped_images_and_certificates_are_no_format() -> None:
    rng = random.Random(5)
    image = b"\x89PNG\r\n\x1a\n" + rng.randbytes(6000)
    certificate = b"0\x82\x05\x10" + rng.randbytes(1200)  # DER: a public certificate
    for blob, lines in ((image, base64.encodebytes), (certificate, _pem_lines)):
        body = b"--b\r\n\r\n" + lines(blob) + b"\r\n--b--\r\n"
        assert _decide(body, "multipart/form-data")[0] is Verdict.ALLOW


def _pem_lines(blob: bytes) -> bytes:
    text = base64.b64encode(blob)
    body = b"\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"\n-----END CERTIFICATE-----\n"
