"""`agentcage host ...` through click, and `cage create` refusing a host that cannot run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cage.podman import PodmanHost
from agentcage.cli import host_cmd
from agentcage.cli.main import cli
from agentcage.errors import HostError
from tests.unit.cage.fakes import FakeBuilder, make_cages, write_config
from tests.unit.cage.host_fakes import healthy, host_of


def _detect(monkeypatch: pytest.MonkeyPatch, host: PodmanHost) -> None:
    monkeypatch.setattr(host_cmd.PodmanHost, "detect", classmethod(lambda cls: host))


def test_check_prints_every_item_and_exits_1_on_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = healthy()
    runner.files["/proc/1/comm"] = "process_api\n"
    _detect(monkeypatch, host_of(runner))
    result = CliRunner().invoke(cli, ["host", "check"])
    assert result.exit_code == 1
    assert "[fail] systemd: PID 1 is 'process_api', not systemd" in result.output
    assert "[pass] podman: Podman 5.4.2" in result.output
    assert result.output.rstrip().endswith("9 passed, 0 warnings, 1 failed")


def test_check_json(monkeypatch: pytest.MonkeyPatch) -> None:
    _detect(monkeypatch, host_of(healthy()))
    result = CliRunner().invoke(cli, ["host", "check", "--json"])
    assert result.exit_code == 0
    items = json.loads(result.output)
    assert {"name", "status", "detail", "fixes"} == set(items[0])
    assert all(item["status"] == "pass" for item in items)


def test_status_without_a_host_container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["host", "status"])
    assert result.exit_code == 1
    assert "no host container: cages run on this machine" in result.output


def test_create_on_an_unfit_host_fails_before_building_anything(tmp_path: Path) -> None:
    runner = healthy()
    runner.files["/proc/1/comm"] = "bash\n"
    cages, _ = make_cages(tmp_path)
    cages.host = host_of(runner)
    with pytest.raises(HostError, match="PID 1 is 'bash'"):
        cages.create(write_config(tmp_path), base="debian")
    assert isinstance(cages.builder, FakeBuilder) and cages.builder.built == []
    assert cages.store.names() == []
    assert not runner.commands("systemctl", "daemon-reload")


def test_update_on_an_unfit_host_fails_before_building_anything(tmp_path: Path) -> None:
    runner = healthy()
    cages, _ = make_cages(tmp_path)
    cages.host = host_of(runner)
    cages.create(write_config(tmp_path), base="debian")
    assert isinstance(cages.builder, FakeBuilder) and cages.builder.built == ["debian"]
    runner.missing_commands.add("podman")
    with pytest.raises(HostError, match="podman not found"):
        cages.update("demo")
    assert cages.builder.built == ["debian"]
    assert not runner.commands("systemctl", "restart")
