"""A validated `CageConfig` for DNS tests, with overrides."""

from __future__ import annotations

from typing import Any

from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig


def cage_config(**overrides: Any) -> CageConfig:
    data: dict[str, Any] = {
        "name": "dnstest",
        "container": {"image": "docker.io/library/python:3.12-slim"},
        "domains": {"allow": ["allowed.example", "workers.dev", "10.0.0.0/8"]},
        "dns_servers": ["127.0.0.1:5300"],
    }
    data.update(overrides)
    return CageConfig.model_validate(data, context=LoadContext(check_paths=False))
