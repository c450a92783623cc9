"""`cage destroy NAME` reads the cage's state as JSON: no pydantic, no config schema.

The schema's import was about 0.1 s of every destroy's start, and the facade's other
parts (images, units, the microVM layer) another 0.15 s; `cage destroy --help` took
0.34 to 0.45 s here before, 0.07 to 0.08 s after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("pydantic", "agentcage.config.schema", "agentcage.cage.lifecycle", "agentcage.cage.images")


def test_destroy_runs_without_the_config_schema(tmp_path: Path) -> None:
    state = tmp_path / "config" / "agentcage" / "deployments" / "demo"
    state.mkdir(parents=True)
    config = {"name": "demo", "container": {"image": "x", "named_volumes": {"data": "/data"}}}
    (state / "config.json").write_text(json.dumps(config))
    calls = tmp_path / "calls"
    # The host: every systemctl and podman call answers "nothing there" and is recorded.
    host = tmp_path / "host"
    host.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    host.chmod(0o755)
    for directory in ("quadlet", "systemd"):
        (tmp_path / directory).mkdir()
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
        "    main(['cage', 'destroy', 'demo', '-y'])\n"
        "except SystemExit as exit:\n"
        "    print(json.dumps([exit.code, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    # A fresh interpreter: this test process has imported everything already.
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    code, loaded = json.loads(result.stderr.splitlines()[-1])
    assert code == 0, result.stderr
    assert "cage demo destroyed" in result.stdout
    assert not state.exists()
    assert [m for m in loaded if m.startswith(HEAVY)] == []
    # The named volumes came from the stored config: their units are asked about too.
    shows = [line for line in calls.read_text().splitlines() if line.startswith("systemctl show")]
    assert shows and all("agentcage-demo-data-volume.service" in line for line in shows)
