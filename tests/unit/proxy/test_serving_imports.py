"""What `proxy run` holds while serving: not the modules it never uses.

Every module a sidecar imports stays in its memory for its whole life, in every cage
(docs/cages.md, "Where a sidecar's memory goes").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# The metrics server's HTTP side (loaded at the first scrape: metrics/exposition.py),
# mitmdump's default addons and ruamel.yaml's reader and writer (proxy/lean_import.py),
# tarfile until a tar archive is inspected (policy/leaks/unpacking.py).
NOT_WHILE_SERVING = (
    "agentcage.metrics.wsgi_server",
    "prometheus_client.exposition",
    "wsgiref",
    "http.server",
    "urllib.request",
    "flask",
    "mitmproxy.addons.onboarding",
    "ruamel.yaml.",
    "tarfile",
)

_SERVING = """
import json, sys
import agentcage.cli.main, agentcage.cli.proxy_cmd
from agentcage.proxy.lean_import import defer_unused_packages
defer_unused_packages()  # as `proxy run` does first
import agentcage.proxy.early_start, agentcage.proxy.server
print(json.dumps(sorted(sys.modules)))
"""


def test_the_serving_proxy_loads_no_scrape_or_default_addon_modules() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SERVING], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(result.stdout)
    assert "mitmproxy.master" in loaded and "prometheus_client.metrics" in loaded
    assert [m for m in loaded if m.startswith(NOT_WHILE_SERVING)] == []


# pydantic and the schema: the config is validated in a child (proxy/checked_config.py).
SCHEMA = ("pydantic", "pydantic_core", "agentcage.config.schema", "agentcage.config.load")


def test_the_serving_proxy_holds_no_pydantic_nor_schema_once_its_config_is_checked(
    tmp_path: Path,
) -> None:
    config = tmp_path / "cage.json"
    config.write_text(
        '{"name": "lean", "container": {"image": "localhost/agent:1"},'
        ' "domains": {"allow": ["example.com"]}}'
    )
    script = _SERVING.replace(
        "print(",
        "from pathlib import Path\n"
        "from agentcage.proxy.runtime import Sources, build_runtime\n"
        f"runtime = build_runtime(Sources(Path({str(config)!r})))\n"
        "assert runtime.config.domains.entries == ['example.com'], runtime.config\n"
        "print(",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(result.stdout)
    assert "agentcage.policy.engine" in loaded
    assert [m for m in loaded if m.startswith(SCHEMA)] == []


def test_a_yaml_config_still_loads_ruamel_when_it_is_read(tmp_path: Path) -> None:
    config = tmp_path / "cage.yaml"
    config.write_text(
        "name: lean\ncontainer:\n  image: localhost/agent:1\ndomains:\n  allow: [example.com]\n"
    )
    script = _SERVING.replace(
        "print(",
        f"from agentcage.config import check_config\ncheck_config({str(config)!r})\nprint(",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert "ruamel.yaml.main" in json.loads(result.stdout)
