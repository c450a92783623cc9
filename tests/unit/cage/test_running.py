"""start/stop/restart, `update` reusing what `create` was told, and secrets reaching a running
proxy (issue 12, findings 5, 6 and 7), against `FakeSystemdPodman`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cage import base_choice, domains, images, layout, podman_secrets, remote_hosts
from agentcage.cage.base_choice import choose_base
from agentcage.cage.images import REGISTRY_BASE
from agentcage.cage.lifecycle import Cages
from agentcage.cage.observe import UNIT_PROPERTIES
from agentcage.cage.podman import Completed
from agentcage.cli.main import cli
from agentcage.errors import ConfigError, StateError, UnreachableError
from tests.unit.cage.fakes import (
    FakeBuilder,
    FakeSystemdPodman,
    make_cages,
    write_config,
)

AGENT, PROXY, DNS = (f"agentcage-demo-{role}.service" for role in ("agent", "proxy", "dns"))
PINNED = "127.0.0.1:5000/agentcage/base:bookworm@sha256:" + "ab" * 32


def _created(tmp_path: Path, base: str = "debian") -> tuple[FakeSystemdPodman, Cages]:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path), base=base)
    return host, cages


def _wired(cages: Cages, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_hosts, "facade", lambda *a, **k: cages)


def test_stop_start_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host, cages = _created(tmp_path)
    _wired(cages, monkeypatch)
    invoke = CliRunner().invoke
    host.calls.clear()
    stopped = invoke(cli, ["cage", "stop", "demo"])
    assert stopped.exit_code == 0 and "cage demo stopped" in stopped.stdout
    # Stopping the agent alone would leave the sidecars running.
    assert ("systemctl", "stop", AGENT, PROXY, DNS) in host.calls
    assert cages.status("demo").state == "inactive"
    started = invoke(cli, ["cage", "start", "demo"])
    assert started.exit_code == 0 and "cage demo is running" in started.stdout
    assert ("systemctl", "start", AGENT) in host.calls
    restarted = invoke(cli, ["cage", "restart", "demo"])
    assert restarted.exit_code == 0, restarted.output
    assert ("systemctl", "restart", DNS, PROXY, AGENT) in host.calls
    assert not host.commands("podman", "rm")  # nothing is removed


def test_an_agent_that_exited_is_not_called_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, cages = _created(tmp_path)
    _wired(cages, monkeypatch)
    shown = Completed((), 0, f"Id={AGENT}\nActiveState=inactive\n", "")
    host.answers[("systemctl", "show", f"--property={','.join(UNIT_PROPERTIES)}", AGENT)] = shown
    # What the start itself sees right after `systemctl start` returns.
    host.answers[("systemctl", "show", "--property=ActiveState,Result", AGENT)] = shown
    result = CliRunner().invoke(cli, ["cage", "start", "demo"])
    assert result.exit_code == 0
    assert "its agent is inactive (it ran and exited; proxy and DNS keep running)" in (
        result.stdout
    )


def test_start_of_an_unknown_cage(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path, FakeSystemdPodman())
    for action in (cages.start, cages.stop, cages.restart):
        with pytest.raises(StateError, match="no cage named 'nosuch'"):
            action("nosuch")


def test_start_with_systemd_unreachable(tmp_path: Path) -> None:
    host, cages = _created(tmp_path)
    host.systemd_reachable = False
    with pytest.raises(UnreachableError):
        cages.start("demo")


def test_update_reuses_the_base_create_was_given(tmp_path: Path) -> None:
    _, cages = _created(tmp_path, base="debian")
    builder = cages.builder
    assert isinstance(builder, FakeBuilder)
    cages.update("demo")
    assert builder.built == ["debian", "debian"]
    cages.update("demo", base="registry")  # a flag overrides, and is recorded
    cages.update("demo")
    assert builder.built == ["debian", "debian", "registry", "registry"]
    assert layout.load_create_options(cages.store, "demo") == layout.CreateOptions("registry")


def test_update_of_a_cage_without_recorded_options_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cages = _created(tmp_path)
    (cages.store.path("demo") / layout.CREATE_OPTIONS_FILE).unlink()
    monkeypatch.setenv(base_choice.IMAGE_BASE_ENV, "debian")
    cages.update("demo")
    assert layout.load_create_options(cages.store, "demo") == layout.CreateOptions("debian")


def test_cli_update_passes_no_base_unless_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cages = _created(tmp_path, base="debian")
    _wired(cages, monkeypatch)
    monkeypatch.setenv(base_choice.IMAGE_BASE_ENV, "registry")  # the recorded choice wins
    assert CliRunner().invoke(cli, ["cage", "update", "demo"]).exit_code == 0
    builder = cages.builder
    assert isinstance(builder, FakeBuilder) and builder.built[-1] == "debian"


def test_choose_base() -> None:
    assert choose_base(None, {}) == "registry"
    assert choose_base(None, {base_choice.IMAGE_BASE_ENV: "debian"}) == "debian"
    assert choose_base("registry", {base_choice.REGISTRY_BASE_ENV: PINNED}) == PINNED
    assert choose_base("debian", {base_choice.REGISTRY_BASE_ENV: PINNED}) == "debian"
    with pytest.raises(ConfigError, match="not pinned by digest"):
        choose_base("registry", {base_choice.REGISTRY_BASE_ENV: "127.0.0.1:5000/base:bookworm"})
    with pytest.raises(ConfigError, match="choose registry or debian"):
        choose_base(None, {base_choice.IMAGE_BASE_ENV: "docker"})
    builder = images.ImageBuilder(FakeSystemdPodman())
    assert builder.base_ref("registry") == REGISTRY_BASE
    assert builder.base_ref(PINNED) == PINNED


def test_secret_set_restarts_a_proxy_that_runs_while_the_agent_has_exited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, cages = _created(tmp_path)
    host.units[AGENT] = "inactive"  # the agent ran and finished; the proxy serves on
    host.calls.clear()
    assert podman_secrets.set_secret(cages, "demo", "API_KEY", "v1") == [PROXY]
    assert ("systemctl", "restart", "--job-mode=ignore-dependencies", PROXY) in host.calls
    assert ("systemctl", "start", AGENT) not in host.calls  # it stays as it was
    proxy = (tmp_path / "quadlet" / "agentcage-demo-proxy.container").read_text()
    assert "target=/run/secrets/agentcage/API_KEY" in proxy
    _wired(cages, monkeypatch)
    said = CliRunner().invoke(cli, ["secret", "set", "demo", "API_KEY"], input="v2\n")
    assert said.exit_code == 0
    assert f"restarted {PROXY} to apply it" in said.stdout


def test_secret_set_on_a_stopped_cage_says_when_it_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, cages = _created(tmp_path)
    cages.stop("demo")
    host.calls.clear()
    assert podman_secrets.set_secret(cages, "demo", "API_KEY", "v1") == []
    assert not host.commands("systemctl", "restart")
    _wired(cages, monkeypatch)
    said = CliRunner().invoke(cli, ["secret", "set", "demo", "API_KEY"], input="v2\n")
    assert "the proxy is not running; this applies at the next `agentcage cage start demo`" in (
        said.stdout
    )


def test_secret_set_with_systemd_unreachable_changes_nothing(tmp_path: Path) -> None:
    host, cages = _created(tmp_path)
    host.systemd_reachable = False
    with pytest.raises(UnreachableError):
        podman_secrets.set_secret(cages, "demo", "API_KEY", "v1")
    assert not host.secrets


def test_domain_add_reloads_sidecars_that_run_while_the_agent_has_exited(tmp_path: Path) -> None:
    host, cages = _created(tmp_path)
    host.units[AGENT] = "inactive"
    host.calls.clear()
    domains.change(cages, "demo", "example.org", add=True)
    assert ("podman", "kill", "--signal", "HUP", "agentcage-demo-proxy") in host.calls
    assert ("podman", "kill", "--signal", "HUP", "agentcage-demo-dns") in host.calls
    cages.stop("demo")
    host.calls.clear()
    assert cages.reload("demo") == []  # stopped: the new config is read at start
    assert not host.commands("podman", "kill")


def test_create_says_what_its_own_start_saw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    _wired(cages, monkeypatch)
    config = write_config(tmp_path)
    created = CliRunner().invoke(cli, ["cage", "create", "-c", str(config)])
    assert created.exit_code == 0, created.output
    assert "cage demo is running" in created.stdout
    # No second round of questions (`cage status`) after the start answered.
    assert not host.commands("podman", "container", "inspect")
    assert len(host.commands("systemctl", "show", "--property=ActiveState,Result", AGENT)) == 1
