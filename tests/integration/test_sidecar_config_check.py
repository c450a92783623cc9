"""Both sidecars' config check before READY=1 (child_check.py): a fork of the sidecar, not
a second Python, and still the whole check, with the sidecar's own environment; or, with
an answer stored ahead for the same bytes (checked_ahead.py), no child at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentcage.cage.layout import store_check_answers
from agentcage.config import load_config
from agentcage.errors import AgentcageError
from tests.support.dns_sidecar import free_port
from tests.support.notify import NotifySocket

pytestmark = pytest.mark.integration

ROLES = ["dns", "proxy"]
_VARIABLE = "AGENTCAGE_TEST_CHECKED_VALUE"
# Each Python that starts with this directory on its path appends its PID here, and
# each fork it makes (os.fork, as `forked_check` does) the child's PID with a "fork " before.
_COUNTER = (
    "import os\nwith open(os.environ['PYTHONS_STARTED'], 'a') as f: f.write(f'{os.getpid()}\\n')\n"
    "def _forked():\n"
    "    with open(os.environ['PYTHONS_STARTED'], 'a') as f: f.write(f'fork{os.getpid()}\\n')\n"
    "os.register_at_fork(after_in_child=_forked)\n"
)


def _config(path: Path, **extra: object) -> Path:
    data = {
        "name": "checked",
        "container": {"image": "localhost/agent:1", **extra},
        "domains": {"allow": ["allowed.example"]},
        "dns_servers": ["127.0.0.1"],  # never asked: nothing queries the sidecar here
    }
    path.write_text(json.dumps(data))
    return path


def _start(role: str, config: Path, tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", "from agentcage.cli.main import main; main()", role, "run"]
    argv += ["--config", str(config), "--listen", f"127.0.0.1:{free_port()}"]
    argv += ["--audit-log", str(tmp_path / f"{role}.jsonl")]
    if role == "proxy":
        argv += ["--ca-dir", str(tmp_path / "ca")]
    return subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(sidecar: subprocess.Popen[str]) -> None:
    sidecar.terminate()
    sidecar.communicate(timeout=30)


@pytest.mark.parametrize("role", ROLES)
def test_the_check_before_ready_starts_no_second_python(role: str, tmp_path: Path) -> None:
    env, started = _counted(tmp_path)
    with NotifySocket(tmp_path) as notify:
        sidecar = _start(role, _config(tmp_path / "cage.json"), tmp_path, {**env, **notify.env})
        try:
            assert notify.receive() == b"READY=1"
            pythons = [p for p in started.read_text().split() if not p.startswith("fork")]
            assert pythons == [str(sidecar.pid)]  # the sidecar alone
        finally:
            _stop(sidecar)


def _counted(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_COUNTER)
    started = tmp_path / "started"
    path = os.pathsep.join([str(site), *(p for p in sys.path if p)])
    return {"PYTHONPATH": path, "PYTHONS_STARTED": str(started)}, started


@pytest.mark.parametrize("role", ROLES)
def test_the_check_before_ready_forks_once_without_a_stored_answer(
    role: str, tmp_path: Path
) -> None:
    env, started = _counted(tmp_path)
    with NotifySocket(tmp_path) as notify:
        sidecar = _start(role, _config(tmp_path / "cage.json"), tmp_path, {**env, **notify.env})
        try:
            assert notify.receive() == b"READY=1"
            pids = started.read_text().split()
            assert pids[0] == str(sidecar.pid) and len(pids) == 2 and pids[1].startswith("fork")
        finally:
            _stop(sidecar)


@pytest.mark.parametrize("role", ROLES)
def test_a_stored_answer_starts_no_check_before_ready(role: str, tmp_path: Path) -> None:
    env, started = _counted(tmp_path)
    config = _config(tmp_path / "cage.json")
    assert len(store_check_answers(config, config)) == 2
    with NotifySocket(tmp_path) as notify:
        sidecar = _start(role, config, tmp_path, {**env, **notify.env})
        try:
            assert notify.receive() == b"READY=1"
            assert started.read_text().split() == [str(sidecar.pid)]  # no fork, no Python
        finally:
            _stop(sidecar)


@pytest.mark.parametrize("role", ROLES)
def test_a_stored_answer_for_other_bytes_leaves_a_bad_config_failing(
    role: str, tmp_path: Path
) -> None:
    config = _config(tmp_path / "cage.json")
    store_check_answers(config, config)
    data = json.loads(config.read_text())
    config.write_text(json.dumps({**data, "name": "Not A Name"}))
    with pytest.raises(AgentcageError) as in_process:
        load_config(config)
    with NotifySocket(tmp_path) as notify:
        sidecar = _start(role, config, tmp_path, notify.env)
        _, err = sidecar.communicate(timeout=60)
        assert sidecar.returncode == 2 and in_process.value.message in err
        with pytest.raises(TimeoutError):
            notify.receive(timeout=0.1)  # no READY=1 was sent


@pytest.mark.parametrize("role", ROLES)
def test_an_unset_variable_fails_the_sidecar_before_ready(role: str, tmp_path: Path) -> None:
    config = _config(tmp_path / "cage.json", env={"KEY": f"${{{_VARIABLE}}}"})
    os.environ.pop(_VARIABLE, None)
    with pytest.raises(AgentcageError) as in_process:
        load_config(config)
    with NotifySocket(tmp_path) as notify:
        sidecar = _start(role, config, tmp_path, notify.env)
        _, err = sidecar.communicate(timeout=60)
        assert sidecar.returncode == 2
        assert in_process.value.message in err and f"${{{_VARIABLE}}}" in err
        with pytest.raises(TimeoutError):
            notify.receive(timeout=0.1)  # no READY=1 was sent


@pytest.mark.parametrize("role", ROLES)
def test_the_check_sees_the_sidecars_environment(role: str, tmp_path: Path) -> None:
    config = _config(tmp_path / "cage.json", env={"KEY": f"${{{_VARIABLE}}}"})
    with NotifySocket(tmp_path) as notify:
        sidecar = _start(role, config, tmp_path, {_VARIABLE: "set", **notify.env})
        try:
            assert notify.receive() == b"READY=1"
        finally:
            _stop(sidecar)
