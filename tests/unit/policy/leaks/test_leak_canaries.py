from __future__ import annotations

import re
import zlib

import pytest

from agentcage.policy.canaries import _base62
from agentcage.policy.leaks import KINDS, canary_value

FORMATS = {
    "anthropic": r"sk-ant-api03-[A-Za-z0-9_-]{93}AA",
    "openai": r"sk-proj-[A-Za-z0-9_-]{74}T3BlbkFJ[A-Za-z0-9_-]{74}",
    "aws": r"AKIA[A-Z2-7]{16}",
    "aws-secret": r"[A-Za-z0-9+/]{40}",
    "github": r"ghp_[A-Za-z0-9]{36}",
    "gitlab": r"glpat-[A-Za-z0-9_-]{20}",
    "slack": r"xoxb-\d{13}-\d{13}-[A-Za-z0-9]{24}",
    "stripe": r"sk_live_[A-Za-z0-9]{99}",
    "generic": r"[0-9a-f]{40}",
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_its_real_format(kind: str) -> None:
    assert re.fullmatch(FORMATS[kind], canary_value(kind, "ENV", b"seed"))


@pytest.mark.parametrize("kind", KINDS)
def test_values_are_deterministic_per_seed_and_env(kind: str) -> None:
    value = canary_value(kind, "ENV", b"seed")
    assert canary_value(kind, "ENV", b"seed") == value
    assert canary_value(kind, "ENV", b"other") != value
    assert canary_value(kind, "OTHER", b"seed") != value


def test_github_canary_carries_a_valid_checksum() -> None:
    token = canary_value("github", "GH", b"seed")
    body, check = token[4:34], token[34:]
    assert check == _base62(zlib.crc32(body.encode()), 6)


def test_unknown_kind_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError, match="anthropic"):
        canary_value("bitcoin", "X", b"s")
