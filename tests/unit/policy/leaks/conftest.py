"""Secrets shared by the leak tests: realistic shapes, no real credentials."""

from __future__ import annotations

import pytest

from agentcage.policy.leaks import Protected

ANTHROPIC = b"sk-ant-api03-Zx9Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz2Xc4Vb6Nm8Qa1Ws2Ed3Rf4Tg5Yh6-AA"
GITHUB = b"ghp_R8vYq2LmN4pX7tK9wZ3cB6dF1gH5jS0aE2uI"
PLACEHOLDER = b"{{ANTHROPIC_API_KEY}}"


@pytest.fixture
def protected() -> list[Protected]:
    return [
        Protected("ANTHROPIC_API_KEY", ANTHROPIC, "injected", ("api.anthropic.com",)),
        Protected("ANTHROPIC_API_KEY", PLACEHOLDER, "placeholder", ("api.anthropic.com",)),
        Protected("GITHUB_TOKEN", GITHUB, "known"),
    ]
