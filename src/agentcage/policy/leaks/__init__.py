"""Leaks that patterns miss: known secrets, placeholders and canaries in any spelling.

`LeakDetector` is the engine of the `leaks` inspector; `Unwrapper` is the bounded
decoder other scanners may reuse. Responses are scrubbed in `policy/scrubbing/`.
"""

from agentcage.policy.canaries import KINDS, canary_value
from agentcage.policy.leaks.detector import LeakDetector, LeakSettings
from agentcage.policy.leaks.matcher import Match, SecretMatcher
from agentcage.policy.leaks.protected import Protected, Role
from agentcage.policy.leaks.split import SplitDetector, WindowLimits
from agentcage.policy.leaks.unwrap import Limits, Unwrapper, View

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
