"""The cage, domain and secret commands, driven through click with fakes underneath."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cage import remote_hosts
from agentcage.cli.main import cli
from tests.unit.cage.fakes import (
    RecordingRunner,
    make_cages,
    ok,
    write_config,
)


@pytest.fixture
def wired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RecordingRunner:
    runner = RecordingRunner(
        answers={
            ("systemctl", "is-active"): ok("active\n"),
            ("systemctl", "show"): ok("ActiveState=active\n"),
        }
    )
    cages, _ = make_cages(tmp_path, runner)
    factory = lambda *a, **k: cages  # noqa: E731
    monkeypatch.setattr(remote_hosts, "facade", factory)
    monkeypatch.setattr(remote_hosts, "destroyer", factory)
    return runner


def test_create_list_domain_secret_destroy(tmp_path: Path, wired: RecordingRunner) -> None:
    invoke = CliRunner().invoke
    config = write_config(tmp_path)
    result = invoke(cli, ["cage", "create", "-c", str(config), "--base", "debian"])
    assert result.exit_code == 0, result.output
    assert "cage demo is running" in result.output
    listing = invoke(cli, ["cage", "list"])
    assert "demo" in listing.output and "active" in listing.output
    added = invoke(cli, ["domain", "add", "demo", "github.com"])
    assert "github.com added to the allowlist of demo" in added.output
    again = invoke(cli, ["domain", "add", "demo", "github.com"])
    assert "github.com already in the allowlist of demo" in again.output
    removed = invoke(cli, ["domain", "rm", "demo", "github.com"])
    assert "github.com removed from the allowlist of demo" in removed.output
    gone = invoke(cli, ["domain", "rm", "demo", "github.com"])
    assert "github.com was not in the allowlist of demo" in gone.output
    assert "github.com" not in invoke(cli, ["domain", "list", "demo"]).output
    invoke(cli, ["domain", "add", "demo", "github.com"])
    assert "github.com" in invoke(cli, ["domain", "list", "demo"]).output
    secret = invoke(cli, ["secret", "set", "demo", "API_KEY"], input="top-secret\n")
    assert secret.exit_code == 0, secret.output
    assert "top-secret" not in secret.output
    assert not [c for c in wired.calls if any("top-secret" in part for part in c)]
    refused = invoke(cli, ["cage", "destroy", "demo"], input="n\n")
    assert refused.exit_code != 0
    assert invoke(cli, ["cage", "destroy", "demo", "-y"]).exit_code == 0
    assert "no cages" in invoke(cli, ["cage", "list"]).output


def test_unknown_cage_is_a_clear_error(wired: RecordingRunner) -> None:
    result = CliRunner().invoke(cli, ["domain", "list", "nope"])
    assert result.exit_code == 1
    assert "no cage named 'nope'" in result.output


def test_bad_base_is_refused(
    tmp_path: Path, wired: RecordingRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTCAGE_IMAGE_BASE", "docker")
    result = CliRunner().invoke(cli, ["cage", "create", "-c", str(write_config(tmp_path))])
    assert result.exit_code == 2
    assert "choose registry or debian" in result.output


def test_units_previews_without_side_effects(tmp_path: Path, wired: RecordingRunner) -> None:
    result = CliRunner().invoke(cli, ["cage", "units", "-c", str(write_config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "# --- agentcage-demo-agent.container" in result.output
    assert "Image=localhost/agentcage-proxy:TAG" in result.output
    assert "Secret=agentcage-demo-API_KEY,type=mount" in result.output
    # Only questions: which Podman, and does its systemd read quadlets.
    assert {call[:2] for call in wired.calls} <= {("podman", "version"), ("sh", "-c")}
    assert not (tmp_path / "quadlet").exists()
    assert not (tmp_path / "state" / "deployments").exists()


def test_units_preview_on_podman_4_3_shows_plain_services(
    tmp_path: Path, wired: RecordingRunner
) -> None:
    wired.answers[("podman", "version")] = ok("4.3.1\n")
    result = CliRunner().invoke(cli, ["cage", "units", "-c", str(write_config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert f"# into {tmp_path / 'systemd'}" in result.output
    assert "# --- agentcage-demo-agent.service" in result.output
    assert ".container" not in result.output
    assert "ExecStart=/usr/bin/podman run --name agentcage-demo-agent" in result.output


def test_lists_print_json_for_tools(tmp_path: Path, wired: RecordingRunner) -> None:
    invoke = CliRunner().invoke
    assert invoke(cli, ["cage", "create", "-c", str(write_config(tmp_path))]).exit_code == 0
    wired.answers[("podman", "secret", "ls")] = ok("agentcage-demo-OLD_KEY\n")
    secrets = invoke(cli, ["secret", "list", "demo", "--json"])
    assert secrets.exit_code == 0, secrets.output
    assert json.loads(secrets.output) == [
        {"name": "API_KEY", "set": False, "used": True},
        {"name": "OLD_KEY", "set": True, "used": False},
    ]
    listed = invoke(cli, ["domain", "list", "demo", "--json"])
    assert json.loads(listed.output) == {"mode": "allowlist", "entries": ["api.example.com"]}
    cages = json.loads(invoke(cli, ["cage", "list", "--json"]).output)
    assert [sorted(row) for row in cages] == [
        ["blocked", "error", "name", "started_at", "state", "uptime_s"]
    ]
