"""Run the CLI in a fresh Python against a stand-in host, and see which modules it loaded.

The stand-in is a script that every systemctl and podman call goes through
(AGENTCAGE_SYSTEMD_EXEC); state is read from `tmp_path/config/agentcage`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FreshRun:
    code: int | str | None  # the CLI's SystemExit code
    loaded: list[str]  # every module in sys.modules at the end
    stdout: str
    stderr: str


def run_cli(tmp_path: Path, host: Path, args: list[str]) -> FreshRun:
    for directory in ("quadlet", "systemd"):
        (tmp_path / directory).mkdir(exist_ok=True)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "AGENTCAGE_SYSTEMD_EXEC": str(host),
        "AGENTCAGE_QUADLET_DIR": str(tmp_path / "quadlet"),
        "AGENTCAGE_SYSTEMD_DIR": str(tmp_path / "systemd"),
    }
    script = (
        "import json, sys\n"
        "from agentcage.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exit:\n"
        "    print(json.dumps([exit.code, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    # A fresh interpreter: the test process has imported everything already.
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    code, loaded = json.loads(result.stderr.splitlines()[-1])
    return FreshRun(code, loaded, result.stdout, result.stderr)
