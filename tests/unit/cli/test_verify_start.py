"""`cage verify NAME` reads the cage's state as JSON: no pydantic, no config schema.

The schema's import and two validations of the stored config (one more to ask whether
the cage is a microVM) were most of the 0.16 to 0.34 s before verify's first question
(bench.cages.trace --timed); the facade's other parts (images, units, the microVM
layer) the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentcage.cage import topology
from agentcage.cage.contract import agent_environment
from agentcage.cage.lifecycle import Cages
from agentcage.cage.state import StateStore
from agentcage.cage.verify_network import MARK
from tests.unit.cage.fakes import FakeBuilder, RecordingRunner, make_cages, write_config
from tests.unit.cli.fresh_cli import run_cli

HEAVY = (
    "pydantic",
    "agentcage.config.schema",
    "agentcage.cage.lifecycle",
    "agentcage.cage.images",
    "agentcage.cage.vm",
)


def test_verify_runs_without_the_config_schema(tmp_path: Path) -> None:
    # A deployed cage's state, made as `cage create` makes it (against a recording host).
    made, _ = make_cages(tmp_path, RecordingRunner())
    store = StateStore(tmp_path / "config" / "agentcage")
    Cages(store, made.host, FakeBuilder()).create(write_config(tmp_path))
    topo = topology.load(store, "demo")
    assert topo is not None
    env = [f"{k}={v}" for k, v in agent_environment(store.load_config("demo"), topo).items()]
    calls = tmp_path / "calls"
    # The host: the agent runs, the script's inspect shows the environment it was given,
    # every other command answers nothing (so those checks fail); each call is recorded.
    host = tmp_path / "host"
    host.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$1 $2" in\n'
        '  "systemctl is-active") echo active ;;\n'
        f"  \"/bin/sh -c\") printf '{MARK} env\\n%s\\n{MARK} mounts\\n[]\\n' "
        f"'{json.dumps(env)}' ;;\n"
        "esac\n"
    )
    host.chmod(0o755)
    run = run_cli(tmp_path, host, ["cage", "verify", "demo", "--json"])
    assert [m for m in run.loaded if m.startswith(HEAVY)] == []
    assert run.code == 1, run.stderr  # the checks the stand-in host cannot answer fail
    checks = {r["name"]: r["passed"] for r in json.loads(run.stdout)}
    # What verify compares with the stored config still holds: the agent's environment
    # has its placeholder and its proxy and CA variables.
    assert checks["cage running"] and checks["placeholders in the agent's env"]
    assert checks["proxy and CA variables set"]
    assert not checks["root filesystem read-only"]
    sent = calls.read_text()
    assert "podman exec agentcage-demo-agent" in sent and "/bin/sh -c" in sent
