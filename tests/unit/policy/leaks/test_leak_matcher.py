"""Every spelling the known-secret matcher promises to recognise, one test each."""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import os
import urllib.parse
from collections.abc import Callable

import pytest

from agentcage.policy.leaks import Protected, SecretMatcher

from .conftest import ANTHROPIC, GITHUB, PLACEHOLDER


def _every_char(sep: bytes) -> Callable[[bytes], bytes]:
    return lambda v: sep.join(bytes([c]) for c in v)


def _b64_at(offset: int, alphabet: str = "std") -> Callable[[bytes], bytes]:
    def encode(value: bytes) -> bytes:
        text = base64.b64encode(b"p" * offset + value + b"!")
        if alphabet == "url":
            text = base64.urlsafe_b64encode(b"p" * offset + value + b"!")
        return b"prefix " + text.rstrip(b"=") + b" suffix"

    return encode


def _b32_at(offset: int) -> Callable[[bytes], bytes]:
    return lambda v: base64.b32encode(b"q" * offset + v).lower().rstrip(b"=")


TECHNIQUES: dict[str, Callable[[bytes], bytes]] = {
    "raw": lambda v: b"token=" + v + b"&x=1",
    "reversed": lambda v: v[::-1],
    "lowercase": lambda v: v.lower(),
    "rot13": lambda v: codecs.encode(v.decode(), "rot13").encode(),
    "html-entity-decimal": lambda v: b"".join(b"&#%d;" % c for c in v),
    "html-entity-hex": lambda v: b"".join(b"&#x%x;" % c for c in v),
    "hex-lower": lambda v: binascii.hexlify(v),
    "hex-upper": lambda v: binascii.hexlify(v).upper(),
    "hex-escape": lambda v: b"".join(b"\\x%02x" % c for c in v),
    "percent-minimal": lambda v: urllib.parse.quote_from_bytes(v, safe="").encode(),
    "percent-every-char": lambda v: b"".join(b"%%%02X" % c for c in v),
    "percent-double": lambda v: urllib.parse.quote(
        urllib.parse.quote_from_bytes(v, safe=""), safe=""
    ).encode(),
    "json-string": lambda v: json.dumps({"k": v.decode()}).encode(),
    "unicode-escape-lower": lambda v: b"".join(b"\\u%04x" % c for c in v),
    "unicode-escape-upper": lambda v: b"".join(b"\\u%04X" % c for c in v),
    **{f"base64@{o}": _b64_at(o) for o in range(3)},
    **{f"base64url@{o}": _b64_at(o, "url") for o in range(3)},
    "base64-mime-wrapped": lambda v: base64.encodebytes(os.urandom(50) + v),
    **{f"base32@{o}": _b32_at(o) for o in range(5)},
    "dash-every-char": _every_char(b"-"),
    "dot-every-char": _every_char(b"."),
    "space-every-char": _every_char(b" "),
    "newline-every-char": _every_char(b"\n"),
    "comma-quoted-array": lambda v: json.dumps([chr(c) for c in v]).encode(),
    "dash-every-4": lambda v: b"-".join(v[i : i + 4] for i in range(0, len(v), 4)),
}


@pytest.fixture
def matcher(protected: list[Protected]) -> SecretMatcher:
    return SecretMatcher(protected)


@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
@pytest.mark.parametrize("value", [ANTHROPIC, GITHUB], ids=["anthropic", "github"])
def test_each_spelling_is_found(matcher: SecretMatcher, technique: str, value: bytes) -> None:
    haystack = b"lorem ipsum " + TECHNIQUES[technique](value) + b" dolor"
    assert value in {m.secret.value for m in matcher.scan(haystack)}


def test_the_matching_spelling_is_named(matcher: SecretMatcher) -> None:
    found = matcher.scan(binascii.hexlify(GITHUB))
    assert [(m.secret.name, m.technique) for m in found] == [("GITHUB_TOKEN", "hex")]


def test_ordinary_text_and_random_bytes_match_nothing(matcher: SecretMatcher) -> None:
    text = b"The quick brown fox jumps over the lazy dog. sk-ant-api03 is a prefix. " * 50
    assert matcher.scan(text) == []
    for _ in range(50):
        assert matcher.scan(os.urandom(4096)) == []


def test_values_shorter_than_the_minimum_are_not_matched() -> None:
    short = Protected("PIN", b"1234", "known")
    matcher = SecretMatcher([short], min_length=8)
    assert matcher.skipped == ("PIN",)
    assert matcher.scan(b"pin 1234 and 12345678") == []


def test_a_partial_secret_is_not_a_match(matcher: SecretMatcher) -> None:
    assert matcher.scan(GITHUB[:-3]) == []


def test_allowed_values_in_many_spellings_cannot_hide_another(protected: list[Protected]) -> None:
    matcher = SecretMatcher(protected)
    decoys = b" ".join(fn(PLACEHOLDER) for fn in TECHNIQUES.values())
    found = matcher.scan(decoys + b" " + GITHUB[::-1])
    assert {m.secret.name for m in found} == {"ANTHROPIC_API_KEY", "GITHUB_TOKEN"}
    assert len(found) == 2  # one match per value


@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
def test_each_spelling_is_found_in_a_large_body_at_every_offset(
    matcher: SecretMatcher, technique: str
) -> None:
    # Past 16 KiB the automaton searches only near the gram filter's hits: a spelling
    # must be found wherever it starts against the filter's 4-byte steps, at either end.
    filler = b"lorem ipsum dolor sit amet 12345 " * 700
    spelled = TECHNIQUES[technique](ANTHROPIC)
    for haystack in [spelled + filler, filler + spelled] + [
        filler[:shift] + spelled + filler for shift in range(1, 8)
    ]:
        assert ANTHROPIC in {m.secret.value for m in matcher.scan(haystack)}, haystack[:40]
