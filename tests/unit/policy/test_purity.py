"""The engine must import and run without mitmproxy (it is the proxy layer's business)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
sys.modules["mitmproxy"] = None  # any `import mitmproxy...` now raises ImportError
import agentcage.policy.engine
from agentcage.policy.types import Request
from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
cfg = CageConfig.model_validate(
    {"name": "t", "container": {"image": "x"}, "domains": {"allow": ["example.com"]}},
    context=LoadContext(check_paths=False),
)
policy = agentcage.policy.engine.Policy.from_config(cfg, {})
print(policy.check_request(Request("GET", "https", "example.com", 443, "/")).verdict.value)
print(any(name.startswith("mitmproxy") and sys.modules[name] is not None for name in sys.modules))
"""


def test_engine_imports_and_runs_without_mitmproxy() -> None:
    # A fresh interpreter: this one may already have mitmproxy loaded by other tests.
    result = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["allow", "False"]
