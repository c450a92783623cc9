"""The one config schema, its defaults and validation."""

from agentcage.config.context import LoadContext
from agentcage.config.load import (
    InvalidConfig,
    Problem,
    check_config,
    load_config,
    parse_config,
    policy_version,
)
from agentcage.config.schema import CageConfig

__all__ = [
    "CageConfig",
    "InvalidConfig",
    "LoadContext",
    "Problem",
    "check_config",
    "load_config",
    "parse_config",
    "policy_version",
]
