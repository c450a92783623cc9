"""Lifecycle, domains and secrets against a recording fake of podman/systemctl."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from agentcage.cage import domains, layout, podman_secrets, topology
from agentcage.cage.podman import Completed
from agentcage.errors import ConfigError, PodmanError, StateError
from tests.unit.cage.fakes import (
    FakeSystemdPodman,
    RecordingRunner,
    make_cages,
    ok,
    write_config,
)


def test_create_writes_state_units_and_ca_then_starts_the_agent(tmp_path: Path) -> None:
    cages, runner = make_cages(tmp_path)
    cages.create(write_config(tmp_path), base="debian")
    units = sorted(p.name for p in (tmp_path / "quadlet").iterdir())
    assert units == [
        "agentcage-demo-agent.container",
        "agentcage-demo-dns.container",
        "agentcage-demo-ext.network",
        "agentcage-demo-int.network",
        "agentcage-demo-proxy.container",
    ]
    checked = runner.commands("systemctl", "is-system-running")  # `host check` ran first
    systemctl = [c for c in runner.commands("systemctl") if c not in checked]
    assert checked and systemctl[0] == ("systemctl", "daemon-reload")
    assert ("systemctl", "start", "agentcage-demo-agent.service") in systemctl
    paths = layout.host_paths(cages.store, "demo")
    key = paths.ca_dir / "mitmproxy-ca.pem"
    assert "PRIVATE KEY" in key.read_text()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = paths.ca_public_cert.read_text()
    assert "BEGIN CERTIFICATE" in public and "PRIVATE KEY" not in public
    sidecar = json.loads((paths.sidecar_config_dir / "config.yaml").read_text())
    assert sidecar["container"] == {"image": "localhost/agent:t"}


def test_create_refuses_an_existing_cage(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    config = write_config(tmp_path)
    cages.create(config)
    with pytest.raises(StateError, match="already exists"):
        cages.create(config)


def test_a_failed_start_rolls_everything_back(tmp_path: Path) -> None:
    # The networks came up before the agent failed.
    host = FakeSystemdPodman(
        answers={("systemctl", "start"): PodmanError("unit failed")},
        networks={"agentcage-demo-int", "agentcage-demo-ext"},
    )
    cages, _ = make_cages(tmp_path, host)
    with pytest.raises(PodmanError, match="unit failed"):
        cages.create(write_config(tmp_path))
    assert not list((tmp_path / "quadlet").iterdir())
    assert not cages.store.exists("demo") and not cages.store.path("demo").exists()
    (removed,) = [c for c in host.calls if c[:3] == ("podman", "network", "rm")]
    assert set(removed[4:]) == {"agentcage-demo-int", "agentcage-demo-ext"}  # in one call
    assert not host.networks


def test_a_failed_agent_unit_is_reported(tmp_path: Path) -> None:
    runner = RecordingRunner(
        answers={("systemctl", "show"): ok("ActiveState=failed\nResult=exit-code\n")}
    )
    cages, _ = make_cages(tmp_path, runner)
    with pytest.raises(PodmanError, match="exit-code"):
        cages.create(write_config(tmp_path))


def test_destroy_removes_units_containers_networks_volumes_secrets_and_state(
    tmp_path: Path,
) -> None:
    host = FakeSystemdPodman(
        volumes={"agentcage-demo-data": "demo"},
        secrets={"agentcage-demo-API_KEY": "v", "agentcage-other-X": "v"},
    )
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path))
    assert cages.destroy("demo")
    assert not list((tmp_path / "quadlet").iterdir())
    assert not cages.store.path("demo").exists()
    assert not host.containers and not host.networks and not host.volumes
    assert not [unit for unit, state in host.units.items() if state != "inactive"]
    assert host.secrets == {"agentcage-other-X": "v"}


def test_destroy_that_fails_keeps_state_for_a_retry(tmp_path: Path) -> None:
    host = FakeSystemdPodman(
        answers={("podman", "network", "rm"): Completed((), 2, "", "network is busy")}
    )
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path))
    with pytest.raises(PodmanError, match="network is busy") as raised:
        cages.destroy("demo")
    assert "left: networks: agentcage-demo-" in raised.value.message
    assert cages.store.exists("demo")


def test_several_cages_get_distinct_subnets_that_persist(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    cages.create(write_config(tmp_path, "one"))
    cages.create(write_config(tmp_path, "two"))
    one, two = topology.load(cages.store, "one"), topology.load(cages.store, "two")
    assert one and two
    subnets = {one.internal_subnet, one.external_subnet, two.internal_subnet, two.external_subnet}
    assert len(subnets) == 4
    assert topology.allocate(cages.store, "one") == one
    cages.destroy("one")
    cages.create(write_config(tmp_path, "three"))
    assert topology.load(cages.store, "three") == topology.Topology("three", 0, *one_subnets(one))


def one_subnets(t: topology.Topology) -> tuple[str, str]:
    return t.internal_subnet, t.external_subnet


def test_domain_add_on_a_running_cage_reloads_sidecars_not_the_agent(tmp_path: Path) -> None:
    runner = RecordingRunner(answers={("systemctl", "is-active"): ok("active\n")})
    cages, runner = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    runner.calls.clear()
    config, changed = domains.change(cages, "demo", "GitHub.com", add=True)
    assert changed and "github.com" in config.domains.entries
    assert ("podman", "kill", "--signal", "HUP", "agentcage-demo-proxy") in runner.calls
    assert ("podman", "kill", "--signal", "HUP", "agentcage-demo-dns") in runner.calls
    assert not [c for c in runner.calls if "restart" in c or "stop" in c]
    sidecar = layout.host_paths(cages.store, "demo").sidecar_config_dir / "config.yaml"
    assert "github.com" in json.loads(sidecar.read_text())["domains"]["list"]
    assert cages.store.load_config("demo").domains.entries == ["api.example.com", "github.com"]
    _, changed = domains.change(cages, "demo", "github.com", add=True)
    assert not changed
    domains.change(cages, "demo", "github.com", add=False)
    assert cages.store.load_config("demo").domains.entries == ["api.example.com"]


def test_domain_add_rejects_a_url(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    cages.create(write_config(tmp_path))
    with pytest.raises(ConfigError, match="not a domain"):
        domains.change(cages, "demo", "https://evil.example/path", add=True)


def test_secret_value_goes_to_stdin_never_argv_and_restarts_a_running_proxy(
    tmp_path: Path,
) -> None:
    runner = RecordingRunner(
        answers={
            ("systemctl", "is-active"): ok("active\n"),
            ("podman", "secret", "ls"): ok("agentcage-demo-API_KEY\n"),
        }
    )
    cages, runner = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    runner.calls.clear()
    runner.inputs.clear()
    restarted = podman_secrets.set_secret(cages, "demo", "API_KEY", "s3cr3t-value")
    assert restarted
    assert not [c for c in runner.calls if any("s3cr3t" in part for part in c)]
    create = runner.calls.index(("podman", "secret", "create", "agentcage-demo-API_KEY", "-"))
    assert runner.inputs[create] == "s3cr3t-value"
    # Only the proxy: a plain restart would take the agent (which requires it) along.
    restart = ("systemctl", "restart", "--job-mode=ignore-dependencies")
    assert (*restart, "agentcage-demo-proxy.service") in runner.calls
    proxy = (tmp_path / "quadlet" / "agentcage-demo-proxy.container").read_text()
    assert "target=/run/secrets/agentcage/API_KEY" in proxy
    agent = (tmp_path / "quadlet" / "agentcage-demo-agent.container").read_text()
    assert "Secret=" not in agent


@pytest.mark.parametrize("name", ["bad-name", "1X", "A B", ""])
def test_secret_names_are_checked(tmp_path: Path, name: str) -> None:
    cages, _ = make_cages(tmp_path)
    with pytest.raises(ConfigError):
        podman_secrets.set_secret(cages, "demo", name, "v")


def test_list_counts_blocked_decisions(tmp_path: Path) -> None:
    runner = RecordingRunner(answers={("systemctl", "show"): ok("ActiveState=inactive\n")})
    cages, _ = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    paths = layout.host_paths(cages.store, "demo")
    (paths.proxy_audit_dir / "proxy.jsonl").write_text(
        '{"verdict":"block","host":"a"}\n{"verdict":"allow"}\nnot json\n{"verdict":"block"}\n'
    )
    (paths.dns_audit_dir / "dns.jsonl").write_text(
        '{"verdict":"block","qname":"x"}\n'
        '{"verdict":"block","qname":"agentcage-probe.invalid"}\n'  # our health check
    )
    (row,) = cages.statuses()
    assert (row.name, row.state, row.blocked) == ("demo", "inactive", 3)


def test_deploying_without_building_lists_no_images(tmp_path: Path) -> None:
    # Nothing new was built, so nothing can have gone stale: no second-long `podman images`.
    cages, runner = make_cages(tmp_path)
    cages.create(write_config(tmp_path))
    assert not runner.commands("podman", "images")


def test_deploying_removes_our_images_no_cage_uses_any_more(tmp_path: Path) -> None:
    listed = "\n".join(
        [
            "localhost/agentcage-proxy:t",  # in use by the cage
            "localhost/agentcage-dns:t",
            "localhost/agentcage-proxy:old1",
            "localhost/agentcage-runtime:old1",
            "localhost/agentcage-gone-agent:abc",  # a destroyed cage's agent
            "localhost/agentcage-agent-debian:abc",  # a base, not content-tagged per build
            "docker.io/library/python:3.12-slim",  # not ours
            "localhost/agentcage-dns:busy",  # a container still uses it
        ]
    )
    runner = RecordingRunner(
        answers={
            ("podman", "images"): ok(listed),
            ("podman", "rmi", "localhost/agentcage-dns:busy"): PodmanError("image in use"),
        }
    )
    cages, runner = make_cages(tmp_path, runner)
    progress: list[str] = []
    cages.progress = progress.append
    cages.builder.built_something = True  # a new runtime image, say
    cages.create(write_config(tmp_path))
    listing = runner.calls.index(
        ("podman", "images", "--filter", "until=1h", "--format", "{{.Repository}}:{{.Tag}}")
    )
    assert listing > runner.calls.index(("systemctl", "start", "agentcage-demo-agent.service"))
    removed = [c[2] for c in runner.calls if c[:2] == ("podman", "rmi")]
    # Children first: the runtime image goes once the sidecar images built on it are gone.
    assert removed == [
        "localhost/agentcage-proxy:old1",
        "localhost/agentcage-gone-agent:abc",
        "localhost/agentcage-dns:busy",
        "localhost/agentcage-runtime:old1",
    ]
    assert "removed 3 image(s) no cage uses any more" in progress


def test_metrics_directories_are_made_once_and_then_left_alone(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    cages.create(write_config(tmp_path))
    paths = layout.host_paths(cages.store, "demo")
    for directory in (paths.proxy_metrics_dir, paths.dns_metrics_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o711
        # As a rootless `:U` mount leaves it: another owner's, which we may not chmod.
        directory.chmod(0o751)
    layout.prepare_sidecar_dirs(cages.store, "demo")
    assert stat.S_IMODE(paths.dns_metrics_dir.stat().st_mode) == 0o751


def test_a_learning_cage_says_so_when_deployed(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    progress: list[str] = []
    cages.progress = progress.append
    cages.create(write_config(tmp_path, extra="  enforcement: learn\n"), base="debian")
    assert progress[0].startswith("warning: cage demo runs in LEARN MODE")
    progress.clear()
    cages.update("demo", write_config(tmp_path))
    assert not any("LEARN MODE" in line for line in progress)


def test_update_reloads_systemd_only_when_a_unit_changed(tmp_path: Path) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    config = write_config(tmp_path)
    cages.create(config)
    assert len(host.commands("systemctl", "daemon-reload")) == 1
    cages.update("demo", config)  # the same units
    assert len(host.commands("systemctl", "daemon-reload")) == 1
    cages.update("demo", write_config(tmp_path, extra="logging:\n  dns_queries: all\n"))
    assert len(host.commands("systemctl", "daemon-reload")) == 1  # sidecar config, not units
    cages.update("demo", _longer_sleep(config))  # the agent unit's Exec= changes
    assert len(host.commands("systemctl", "daemon-reload")) == 2


def test_a_reload_that_failed_is_done_by_the_next_update(tmp_path: Path) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    config = write_config(tmp_path)
    cages.create(config)
    changed = _longer_sleep(config)
    host.answers[("systemctl", "daemon-reload")] = PodmanError("reload failed")
    with pytest.raises(PodmanError, match="reload failed"):
        cages.update("demo", changed)
    del host.answers[("systemctl", "daemon-reload")]
    cages.update("demo", changed)  # the files on disk are the new ones already
    assert len(host.commands("systemctl", "daemon-reload")) == 3


def _longer_sleep(config: Path) -> Path:
    changed = config.with_name("changed.yaml")
    changed.write_text(config.read_text().replace("'1000'", "'2000'"))
    return changed
