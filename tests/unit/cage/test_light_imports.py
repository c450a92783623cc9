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


def _loaded_only_by(module: str, use: str) -> list[bool]:
    """[module loaded by the cage commands' imports, loaded once `use` ran], in a fresh Python."""
    script = (
        "import json, sys\n"
        "import agentcage.cli.cage_cmd, agentcage.cage.lifecycle\n"
        f"before = {module!r} in sys.modules\n"
        f"{use}\n"
        f"print(json.dumps([before, {module!r} in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(result.stdout))


def test_cage_commands_load_the_yaml_reader_only_to_read_yaml() -> None:
    # `cage list`, `status` and `destroy` read JSON state; ruamel costs them ~0.2 s.
    parse = (
        "from agentcage.config import parse_config, LoadContext\n"
        "parse_config('name: x\\ncontainer: {image: a}\\n', 'c.yaml', context=LoadContext())"
    )
    assert _loaded_only_by("ruamel.yaml", parse) == [False, True]


def test_cage_commands_load_cryptography_only_to_make_a_ca() -> None:
    # `cage list`, `status`, `verify` and `destroy` never make a CA; x509 costs them 30 ms.
    make = "from agentcage.cage.ca import make_ca\nmake_ca('demo')"
    assert _loaded_only_by("cryptography.x509", make) == [False, True]


def test_cage_commands_load_the_microvm_deployment_only_for_a_microvm() -> None:
    # A container cage's `create` (and every other cage command) has no use for the VMM's
    # API client and its http.client, email and ssl (half the facade's imports beside the
    # config schema, measured: 0.09-0.15 s instead of 0.16-0.31 s at load average 6.7).
    load = "from agentcage.cage.vm import vm_cage"
    assert _loaded_only_by("agentcage.cage.vm.vm_cage", load) == [False, True]
    assert _loaded_only_by("http.client", load) == [False, True]
