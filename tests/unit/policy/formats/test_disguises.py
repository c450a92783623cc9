"""Credential formats written backwards, in rot13 or in another case are still found."""

from __future__ import annotations

import codecs
import json

import pytest

from agentcage.config.inspection import SecretsConfig
from agentcage.policy.formats.builtin import BUILTIN_PATTERNS
from agentcage.policy.formats.scanner import PatternScanner, build_patterns
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import ALNUM, fake, policy, request

GITHUB = "gh" + "p_" + fake(ALNUM, 36)
AWS = "AK" + "IA" + "QWERTYUIOP234567"
OPEN = {"domains": {"mode": "blocklist", "list": []}, "entropy": False, "content_type": False}
SCANNER = PatternScanner(BUILTIN_PATTERNS)
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()


def _shifted(n: int) -> dict[int, int]:
    return str.maketrans(_LOWER + _UPPER, _LOWER[n:] + _LOWER[:n] + _UPPER[n:] + _UPPER[:n])


DISGUISES = {
    "reversed": lambda v: v[::-1],
    "rot13": lambda v: codecs.encode(v, "rot13"),
    "case-changed": str.swapcase,
    "caesar3": lambda v: v.translate(_shifted(3)),
    "caesar23": lambda v: v.translate(_shifted(23)),
    "atbash": lambda v: v.translate(str.maketrans(_LOWER + _UPPER, _LOWER[::-1] + _UPPER[::-1])),
}


def _found(text: str) -> list[tuple[str, str]]:
    return [(p.name, how) for p, how in SCANNER.matches(json.dumps({"v": text}).encode())]


@pytest.mark.parametrize("how", sorted(DISGUISES))
@pytest.mark.parametrize(("value", "name"), [(GITHUB, "github_token"), (AWS, "aws_access_key_id")])
def test_a_disguised_key_is_found_and_named(how: str, value: str, name: str) -> None:
    assert _found(DISGUISES[how](value)) == [(name, how)]


def test_a_lower_cased_aws_key_is_found_case_insensitively() -> None:
    assert _found(AWS.lower()) == [("aws_access_key_id", "case-changed")]


def test_the_disguise_is_named_in_the_block_reason() -> None:
    engine = policy(**OPEN)
    body = json.dumps({"t": GITHUB[::-1]}).encode()
    decision = engine.check_request(request("evil.example.net", body=body))
    assert decision.verdict is Verdict.BLOCK
    assert "github_token (reversed)" in decision.reason


@pytest.mark.parametrize(
    "text",
    [
        "see the _phg prefix of classic GitHub tokens, reversed, in this sentence",
        "Slovakia" + "x" * 30,  # a case variant of AKIA inside a longer word
        "AIKA" + "Q" * 40,  # AKIA reversed, but too long a run to be a key
        "tuc_shortvalue",  # rot13 of ghp_ with too short a body
        "jks_" + "abc" * 3,  # ghp_ shifted by 3, with too short a body
        "tsk_ordinary_words_in_snake_case",  # ghp_ under atbash, then words
    ],
)
def test_disguised_anchors_without_a_key_are_near_misses(text: str) -> None:
    assert _found(text) == []


def test_a_scanner_that_looks_for_no_disguise_builds_no_finder() -> None:
    """Its variants and automaton hold about 1 MiB: the leak inspector's scanner for
    its guesses (`disguised=False`) never asks it."""
    patterns = build_patterns(SecretsConfig(), {})
    warmed = PatternScanner(patterns)
    warmed.warm()
    assert warmed._disguises is not None
    plain = PatternScanner(patterns, disguised=False)
    plain.warm()
    list(plain.matches(b"x" * 64))
    assert plain._disguises is None


def test_the_disguise_finder_is_built_on_first_use_when_not_warmed() -> None:
    """Built after READY=1 (`Policy.warm`), not with the scanner: a scan before the
    warm still finds a disguised key."""
    scanner = PatternScanner(build_patterns(SecretsConfig(), {}))
    assert scanner._disguises is None
    key = b"ghp_" + b"A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    found = list(scanner.matches(b"token=" + key[::-1]))
    assert [(p.name, how) for p, how in found] == [("github_token", "reversed")]
    assert scanner._disguises is not None
