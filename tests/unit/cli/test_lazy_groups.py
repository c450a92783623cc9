"""`agentcage cage ...` loads only the cage group: no engine, proxy or DNS sidecar code.

Every `cage list`, `create` and `destroy` paid over a second of imports for groups it
never ran, and each sidecar's Python carried the others' modules (7 MiB in the DNS one).
"""

from __future__ import annotations

import json
import subprocess
import sys

from agentcage.cli.main import cli
from tests.unit.cage.test_light_imports import HEAVY


def _loaded_after(args: list[str]) -> list[str]:
    script = (
        "import json, sys\n"
        "from agentcage.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    # A fresh interpreter: this test process has imported everything already.
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    return list(json.loads(result.stderr.splitlines()[-1]))


def test_cage_commands_load_no_other_group() -> None:
    loaded = _loaded_after(["cage", "list", "--help"])
    assert "agentcage.cli.cage_cmd" in loaded
    assert [m for m in loaded if m.startswith(HEAVY)] == []
    assert [m for m in loaded if m.startswith("agentcage.cli.") and m.endswith("_cmd")] == [
        "agentcage.cli.cage_cmd"
    ]


def test_every_group_is_still_listed_and_found() -> None:
    ctx = cli.make_context("agentcage", ["--help"], resilient_parsing=True)
    names = cli.list_commands(ctx)
    assert names == sorted(names) and {"cage", "dns", "proxy", "policy", "host"} <= set(names)
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
