"""The one config schema, its defaults and validation.

The names below load the schema (pydantic and every model) on first use, not when any
module of the package is imported: the DNS sidecar imports `config.host` alone and never
holds the schema (dns/plan.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentcage.config.context import LoadContext as LoadContext
    from agentcage.config.load import (
        InvalidConfig as InvalidConfig,
    )
    from agentcage.config.load import (
        Problem as Problem,
    )
    from agentcage.config.load import (
        check_config as check_config,
    )
    from agentcage.config.load import (
        load_config as load_config,
    )
    from agentcage.config.load import (
        parse_config as parse_config,
    )
    from agentcage.config.load import (
        policy_version as policy_version,
    )
    from agentcage.config.schema import CageConfig as CageConfig

_HOMES = {
    "CageConfig": "agentcage.config.schema",
    "InvalidConfig": "agentcage.config.load",
    "LoadContext": "agentcage.config.context",
    "Problem": "agentcage.config.load",
    "check_config": "agentcage.config.load",
    "load_config": "agentcage.config.load",
    "parse_config": "agentcage.config.load",
    "policy_version": "agentcage.config.load",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
