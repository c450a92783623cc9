"""`cage destroy NAME` reads the cage's state as JSON: no pydantic, no config schema.

The schema's import was about 0.1 s of every destroy's start, and the facade's other
parts (images, units, the microVM layer) another 0.15 s; `cage destroy --help` took
0.34 to 0.45 s here before, 0.07 to 0.08 s after.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.cli.fresh_cli import run_cli

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
    run = run_cli(tmp_path, host, ["cage", "destroy", "demo", "-y"])
    assert run.code == 0, run.stderr
    assert "cage demo destroyed" in run.stdout
    assert not state.exists()
    assert [m for m in run.loaded if m.startswith(HEAVY)] == []
    # The named volumes came from the stored config: their units are asked about too.
    shows = [line for line in calls.read_text().splitlines() if line.startswith("systemctl show")]
    assert shows and all("agentcage-demo-data-volume.service" in line for line in shows)
