"""Builders shared by the policy tests: configs, requests, frames and fake credentials."""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from typing import Any

from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
from agentcage.policy.engine import Policy
from agentcage.policy.types import Frame, Headers, Request

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


def config(**overrides: Any) -> CageConfig:
    data: dict[str, Any] = {
        "name": "test",
        "container": {"image": "docker.io/library/python:3.12-slim"},
        "domains": {"allow": ["anthropic.com", "github.com", "example.com"]},
        "rate_limit": False,
    }
    data.update(overrides)
    return CageConfig.model_validate(data, context=LoadContext(check_paths=False))


def policy(
    values: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Policy:
    """A Policy from `config(**overrides)`; `values` are the real secret values."""
    return Policy.from_config(config(**overrides), values or {}, environ=environ or {})


def request(
    host: str = "api.anthropic.com",
    path: str = "/v1/messages",
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    content_type: str | None = "application/json",
) -> Request:
    pairs = list((headers or {}).items())
    if content_type is not None and body:
        pairs.append(("content-type", content_type))
    return Request(method, "https", host, 443, path, Headers(tuple(pairs)), body)


def frame(payload: bytes, host: str = "api.anthropic.com", *, text: bool = True) -> Frame:
    return Frame(host, 443, "/ws", payload, text)


def fake(alphabet: str, length: int, seed: int = 1) -> str:
    """A deterministic random-looking string: fake credentials built at test time."""
    rng = random.Random(seed * 7919 + length)
    return "".join(rng.choice(alphabet) for _ in range(length))
