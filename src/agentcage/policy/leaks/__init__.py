"""Leaks that patterns miss: known secrets, placeholders and canaries in any spelling.

`LeakDetector` is the engine of the `leaks` inspector; `Unwrapper` is the bounded
decoder other scanners may reuse. Responses are scrubbed in `policy/scrubbing/`.

The names below are imported on first use: the DNS sidecar needs only
`fingerprints.py`, and importing the package for it loaded the detector, its decoders
and their compression libraries too (1 MiB of its memory, 25 ms of its start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentcage.policy.canaries import KINDS, canary_value
    from agentcage.policy.leaks.detector import LeakDetector, LeakSettings
    from agentcage.policy.leaks.matcher import Match, SecretMatcher
    from agentcage.policy.leaks.protected import Protected, Role
    from agentcage.policy.leaks.split import SplitDetector, WindowLimits
    from agentcage.policy.leaks.unwrap import Limits, Unwrapper, View

_HOMES = {
    "KINDS": "agentcage.policy.canaries",
    "canary_value": "agentcage.policy.canaries",
    "LeakDetector": "agentcage.policy.leaks.detector",
    "LeakSettings": "agentcage.policy.leaks.detector",
    "Match": "agentcage.policy.leaks.matcher",
    "SecretMatcher": "agentcage.policy.leaks.matcher",
    "Protected": "agentcage.policy.leaks.protected",
    "Role": "agentcage.policy.leaks.protected",
    "SplitDetector": "agentcage.policy.leaks.split",
    "WindowLimits": "agentcage.policy.leaks.split",
    "Limits": "agentcage.policy.leaks.unwrap",
    "Unwrapper": "agentcage.policy.leaks.unwrap",
    "View": "agentcage.policy.leaks.unwrap",
}

__all__ = [
    "KINDS",
    "LeakDetector",
    "LeakSettings",
    "Limits",
    "Match",
    "Protected",
    "Role",
    "SecretMatcher",
    "SplitDetector",
    "Unwrapper",
    "View",
    "WindowLimits",
    "canary_value",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
