"""`agentcage config validate|schema` and the CLI's error boundary, driven through click."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cli.main import cli

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cage.yaml"
    path.write_text(text)
    return path


def test_validate_ok(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config", "validate", str(ROOT / "examples/basic/config.yaml")])
    assert result.exit_code == 0, result.output
    assert "valid (cage 'basic'" in result.output


def test_validate_openclaw_example(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "openclaw-workspace").mkdir()
    path = str(ROOT / "examples/openclaw/config.yaml")
    result = runner.invoke(cli, ["config", "validate", path], env={"HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output


def test_validate_reports_located_errors_and_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "name: demo\ncontainer:\n  image: x\n  imgae: y\n")
    result = runner.invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:4: container.imgae: unknown key; did you mean `image`?" in result.output
    assert result.output.startswith("error: invalid config (1 problem)")


def test_validate_json(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "name: demo\ncontainer: {image: x}\ndomains: {allow: ['a b']}\n")
    result = runner.invoke(cli, ["config", "validate", "--json", str(path)])
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert report["valid"] is False
    assert report["problems"][0]["line"] == 3
    assert report["problems"][0]["path"] == "domains.list.0"
    good = write(tmp_path, "name: demo\ncontainer: {image: x}\n")
    result = runner.invoke(cli, ["config", "validate", "--json", str(good)])
    assert result.exit_code == 0
    assert json.loads(result.output) == {
        "valid": True,
        "name": "demo",
        "problems": [],
        "warnings": [],
    }


STORED_PLACES = """name: demo
container: {image: x}
secret_injection:
  - env: API_KEY
    inject_to: [api.example.com]
  - env: UPLOAD_TOKEN
    inject_to: [uploads.example.com]
    places: [headers, body]
"""


def test_validate_warns_about_places_a_host_may_store(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, STORED_PLACES)
    result = runner.invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid (cage 'demo'" in result.stdout
    [warning] = result.stderr.splitlines()
    assert warning.startswith(f"warning: {path}:8: secret_injection.1.places: `body` lets")
    assert "UPLOAD_TOKEN" in warning and "API_KEY" not in warning
    report = runner.invoke(cli, ["config", "validate", "--json", str(path)])
    assert report.exit_code == 0
    [entry] = json.loads(report.stdout)["warnings"]
    assert (entry["line"], entry["path"]) == (8, "secret_injection.1.places")


def test_validate_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["config", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_schema_is_json_schema_with_every_top_level_key(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    keys = set(schema["properties"])
    legacy = {
        "name",
        "isolation",
        "container",
        "secret_injection",
        "domains",
        "secrets",
        "inspectors",
        "entropy",
        "content_type",
        "max_request_body",
        "rate_limit",
        "logging",
        "dns_servers",
        "firecracker",
    }
    assert legacy <= keys
    assert schema["required"] == ["name", "container"]
    assert schema["additionalProperties"] is False


def test_help_lists_only_real_groups(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "config" in result.output
