"""`dns run` loads the one module of the leak engine it uses, not the whole engine, and
not the config schema (a child process checks the config: dns/plan.py)."""

from __future__ import annotations

import json
import subprocess
import sys

# The detector, its decoders and their compression libraries: the proxy's, not the DNS
# sidecar's (it checks names against fingerprints only: policy/leaks/fingerprints.py).
PROXY_ONLY = (
    "agentcage.policy.leaks.detector",
    "agentcage.policy.leaks.unwrap",
    "agentcage.policy.leaks.split",
    "agentcage.policy.engine",
    "brotli",
    "zstandard",
    "mitmproxy",
)
# pydantic and the schema: about 8 MiB the serving process would hold for a dozen values.
SCHEMA = ("pydantic", "pydantic_core", "agentcage.config.schema", "agentcage.config.load")
# The metrics server's HTTP side: loaded at the first scrape (metrics/exposition.py).
SCRAPE_ONLY = (
    "agentcage.metrics.wsgi_server",
    "prometheus_client.exposition",
    "wsgiref",
    "http.server",
    "urllib.request",
)


def test_the_dns_sidecar_loads_the_fingerprints_alone() -> None:
    script = (
        "import json, sys\n"
        "import agentcage.cli.main, agentcage.cli.dns_cmd, agentcage.dns.sidecar\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert "agentcage.policy.leaks.fingerprints" in loaded
    assert [m for m in loaded if m.startswith(PROXY_ONLY)] == []
    assert [m for m in loaded if m.startswith(SCHEMA)] == []
    assert [m for m in loaded if m.startswith(SCRAPE_ONLY)] == []


def test_the_package_names_still_resolve() -> None:
    from agentcage.policy import leaks
    from agentcage.policy.leaks.detector import LeakDetector

    assert leaks.LeakDetector is LeakDetector
    assert sorted(leaks.__all__) == sorted(n for n in leaks.__all__ if getattr(leaks, n, None))
