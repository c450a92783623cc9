"""Importing the cage layer loads no inspection engine, proxy or DNS sidecar code.

`agentcage cage ...` runs on the host; it needs the decoy derivation (policy/canaries.py)
for the agent's environment, not the leak engine with its native matchers.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import agentcage.cage

HEAVY = (
    "agentcage.policy.leaks",
    "agentcage.policy.engine",
    "agentcage.proxy",
    "agentcage.dns",
    "ahocorasick_rs",
    "mitmproxy",
    "brotli",
    "zstandard",
)


def test_the_cage_layer_does_not_load_the_engine() -> None:
    modules = [f"agentcage.cage.{m.name}" for m in pkgutil.iter_modules(agentcage.cage.__path__)]
    assert "agentcage.cage.quadlet" in modules and "agentcage.cage.verify" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    # A fresh interpreter: this test process has imported everything already.
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    heavy = [m for m in loaded if m.startswith(HEAVY)]
    assert heavy == []
    assert "agentcage.policy.canaries" in loaded


def test_cage_commands_load_the_yaml_reader_only_to_read_yaml() -> None:
    # `cage list`, `status` and `destroy` read JSON state; ruamel costs them ~0.2 s.
    script = (
        "import json, sys\n"
        "import agentcage.cli.cage_cmd\n"
        "before = 'ruamel.yaml' in sys.modules\n"
        "from agentcage.config import parse_config, LoadContext\n"
        "parse_config('name: x\\ncontainer: {image: a}\\n', 'c.yaml', context=LoadContext())\n"
        "print(json.dumps([before, 'ruamel.yaml' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == [False, True]


def test_cage_commands_load_cryptography_only_to_make_a_ca() -> None:
    # `cage list`, `status`, `verify` and `destroy` never make a CA; x509 costs them 30 ms.
    script = (
        "import json, sys\n"
        "import agentcage.cli.cage_cmd, agentcage.cage.lifecycle\n"
        "before = 'cryptography.x509' in sys.modules\n"
        "from agentcage.cage.ca import make_ca\n"
        "make_ca('demo')\n"
        "print(json.dumps([before, 'cryptography.x509' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == [False, True]
