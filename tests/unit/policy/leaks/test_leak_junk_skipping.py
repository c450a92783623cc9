"""Known values read through junk put in after every five or more of their characters."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest

from agentcage.policy.leaks import LeakDetector, Protected
from agentcage.policy.leaks.junk_skipping import TECHNIQUE
from agentcage.policy.types import Headers, Request

from .conftest import ANTHROPIC, GITHUB

PASSWORD = b"ember-quartz-ember38!"
VALUES = [GITHUB, ANTHROPIC, PASSWORD]


def _detector(*values: bytes) -> LeakDetector:
    return LeakDetector([Protected(f"V{n}", v, "known") for n, v in enumerate(values)])


def _post(body: bytes, path: str = "/drop") -> Request:
    return Request("POST", "https", "collector.example.net", 443, path, Headers(()), body)


def _junked(value: bytes, stretches: list[int], junk: bytes = b"qzjxkvwy") -> bytes:
    out, at, n = bytearray(), 0, 0
    while at < len(value):
        step = stretches[n % len(stretches)]
        out += value[at : at + step] + junk[n % len(junk) : n % len(junk) + 1]
        at, n = at + step, n + 1
    return bytes(out)


def _techniques(detector: LeakDetector, request: Request) -> list[str]:
    return [f.reason for f in detector.check_request(request)]


def _skipped(detector: LeakDetector, request: Request) -> bool:
    return any(TECHNIQUE in reason for reason in _techniques(detector, request))


@pytest.mark.parametrize("value", VALUES, ids=["token", "dashed", "password"])
@pytest.mark.parametrize("stretches", [[5], [6], [8], [13], [5, 9, 7, 6], [7, 5]])
def test_a_junk_letter_after_every_few_characters_is_skipped(
    value: bytes, stretches: list[int]
) -> None:
    body = json.dumps({"id": 7, "data": _junked(value, stretches).decode()}).encode()
    reasons = _techniques(_detector(value), _post(body))
    assert reasons and TECHNIQUE in reasons[0]


def test_two_junk_characters_in_a_place_are_skipped_and_three_are_not() -> None:
    detector = _detector(GITHUB)
    two = b"".join(GITHUB[i : i + 6] + b"qz" for i in range(0, len(GITHUB), 6))
    three = b"".join(GITHUB[i : i + 6] + b"qzj" for i in range(0, len(GITHUB), 6))
    assert _techniques(detector, _post(two))
    assert not _techniques(detector, _post(three))


def test_junk_in_a_query_value_is_skipped() -> None:
    path = "/c?d=" + _junked(GITHUB, [7]).decode()
    assert _techniques(_detector(GITHUB), _post(b"", path))


def test_junk_is_skipped_only_in_the_request_itself() -> None:
    # Beneath base64 it would be a guess upon a decoding; the dejunked views stop
    # there too.
    body = base64.b64encode(_junked(GITHUB, [6]))
    assert not _techniques(_detector(GITHUB), _post(body))


def test_short_values_are_not_followed_through_junk() -> None:
    value = b"pa55w0rd-x"  # ten canonical characters
    assert not _techniques(_detector(value), _post(_junked(value, [5])))


def test_the_leading_characters_followed_by_something_else_are_no_leak() -> None:
    detector = _detector(*VALUES)
    texts = [
        GITHUB[:12] + b"x" + GITHUB[13:20] + b"qq" + b"z" * 20,  # the value breaks off
        b"ember quartz is a stone; ember-quartz-ember is a name",
        b"the ember, the quartz and the ember 3 8 days",  # gaps of three and more
        b"sk-ant-api03 is the prefix of an Anthropic API key: sk-ant-api03-...",
    ]
    for text in texts:
        assert not _skipped(detector, _post(text)), text


def test_random_tokens_and_prose_are_not_taken_for_a_junked_value() -> None:
    # Bodies of random tokens over the values' own alphabet, each starting with a
    # value's first five characters, then prose with the values' words.
    rng = random.Random(11)
    detector = _detector(*VALUES)
    alphabet = (string.ascii_letters + string.digits + "-_").encode()
    for _ in range(2000):
        head = rng.choice(VALUES)[:5]
        tokens = [head + bytes(rng.choices(alphabet, k=40)) for _ in range(4)]
        assert not _skipped(detector, _post(b" ".join(tokens)))
    # The password's words but not its number: its words in order with short words
    # between them are taken for it (below).
    words = ["ember", "quartz", "ghp", "sk", "ant", "api03", "the", "a", "of", "and", "stone", "to"]
    for _ in range(2000):
        text = " ".join(rng.choices(words, k=60)).encode()
        assert not _skipped(detector, _post(text))


def test_a_password_of_words_with_short_words_between_them_is_the_password() -> None:
    # A cost of skipping: prose that holds the password's words in order with a
    # one- or two-letter word between them is taken for it.
    assert _skipped(_detector(PASSWORD), _post(b"ember quartz ember a 38"))
