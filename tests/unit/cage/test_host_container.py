"""The host container: its record, how cage commands find it, and start/stop/status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentcage.cage.host_container import HostContainers
from agentcage.cage.host_image import HostImageRecipe
from agentcage.cage.host_target import HostTarget, load_target, save_target
from agentcage.cage.podman import PodmanHost
from agentcage.errors import HostError, PodmanError, StateError
from tests.unit.cage.fakes import FakeBuilder, RecordingRunner, ok
from tests.unit.cage.host_fakes import done

NAME = "agentcage-host"
INSPECT = ("podman", "container", "inspect")


def target(tmp_path: Path, name: str = NAME) -> HostTarget:
    return HostTarget(name, "localhost/agentcage-host:t", tmp_path / "data" / name, (tmp_path,))


# --- the record and targeting -------------------------------------------------------------


def test_record_round_trips_and_a_damaged_one_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    assert load_target(config) is None
    save_target(config, target(tmp_path))
    assert load_target(config) == target(tmp_path)
    assert (config / "host.json").stat().st_mode & 0o777 == 0o600
    (config / "host.json").write_text("{")
    with pytest.raises(StateError, match="damaged host container record"):
        load_target(config)


def test_unshared_paths() -> None:
    box = HostTarget(NAME, "i", Path("/d"), (Path("/work"), Path("/root/.config/agentcage")))
    paths = [Path("/work"), Path("/work/a/b"), Path("/workshop"), Path("/srv")]
    assert box.unshared(paths) == [Path("/workshop"), Path("/srv")]


def test_detect_targets_the_recorded_host_container(tmp_path: Path) -> None:
    save_target(tmp_path / "agentcage", target(tmp_path))
    host = PodmanHost.detect({"XDG_CONFIG_HOME": str(tmp_path), "HOME": "/nowhere"})
    assert host.prefix == ("podman", "exec", "-i", NAME)
    assert host.runner_prefix() == ("podman", "exec", "-i", NAME)
    assert host.quadlet_dir == tmp_path / "data" / NAME / "quadlet"
    assert host.host_container == target(tmp_path)


def test_env_prefix_and_quadlet_dir_override_the_record(tmp_path: Path) -> None:
    save_target(tmp_path / "agentcage", target(tmp_path))
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "AGENTCAGE_SYSTEMD_EXEC": "podman exec -i harness",
        "AGENTCAGE_QUADLET_DIR": "/q",
    }
    host = PodmanHost.detect(env)
    assert host.prefix == ("podman", "exec", "-i", "harness")
    assert host.quadlet_dir == Path("/q") and host.host_container is None


def test_without_a_record_cages_run_on_this_machine(tmp_path: Path) -> None:
    host = PodmanHost.detect({"XDG_CONFIG_HOME": str(tmp_path)})
    assert host.prefix == () and host.host_container is None


def test_a_stopped_host_container_is_named_in_the_error(tmp_path: Path) -> None:
    stopped = PodmanError("Error: can only create exec sessions on running containers")
    runner = RecordingRunner(answers={("systemctl",): stopped})
    host = PodmanHost(tmp_path, False, runner, target(tmp_path).exec_prefix, True, target(tmp_path))
    with pytest.raises(PodmanError) as caught:
        host.systemctl("daemon-reload")
    assert caught.value.hint is not None
    assert "host container agentcage-host, which is not running" in caught.value.hint
    assert "`agentcage host start`" in caught.value.hint


def test_without_systemd_the_hint_points_at_host_check_and_start(tmp_path: Path) -> None:
    runner = RecordingRunner(
        answers={("systemctl",): PodmanError("System has not been booted with systemd")}
    )
    with pytest.raises(PodmanError) as caught:
        PodmanHost(tmp_path, False, runner).systemctl("daemon-reload")
    assert "`agentcage host check`" in str(caught.value.hint)
    assert "`agentcage host start`" in str(caught.value.hint)


# --- start / stop / status ----------------------------------------------------------------


class Machine:
    """HostContainers over a recording runner, with the image present and systemd booting."""

    def __init__(self, tmp_path: Path, euid: int = 0) -> None:
        self.tmp = tmp_path
        self.runner = RecordingRunner(
            answers={
                INSPECT: PodmanError("no such container"),
                ("podman", "info"): ok("/var/lib/containers/storage\n"),
                ("podman", "exec", NAME, "systemctl", "is-system-running"): ok("running\n"),
            }
        )
        builder = FakeBuilder()
        builder.runner = self.runner
        (tmp_path / "cgroup").mkdir()
        self.containers = HostContainers(
            self.runner,
            builder,
            config_dir=tmp_path / "cfg",
            data_dir=tmp_path / "data",
            euid=euid,
            cgroup_root=tmp_path / "cgroup",
        )

    def runs(self) -> list[tuple[str, ...]]:
        return self.runner.commands("podman", "run")


def test_start_runs_a_privileged_systemd_container_and_records_it(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    (tmp_path / "work").mkdir()
    started = m.containers.start(shares=[tmp_path / "work"])
    (run,) = m.runs()
    image = HostImageRecipe.for_this_machine().ref()
    assert run[-2:] == (image, "/usr/lib/systemd/systemd")
    assert {"--privileged", "--systemd=always", "--pull=never"} <= set(run)
    mounts = [run[i + 1] for i, arg in enumerate(run) if arg == "-v"]
    data = tmp_path / "data" / "host" / NAME
    assert mounts == [
        "/var/lib/containers/storage:/var/lib/shared:ro",
        f"{data / 'storage'}:/var/lib/containers",
        f"{data / 'quadlet'}:/etc/containers/systemd",
        f"{data / 'home'}:/home",
        f"{tmp_path / 'cfg'}:{tmp_path / 'cfg'}",
        f"{tmp_path / 'work'}:{tmp_path / 'work'}",
    ]
    assert started == load_target(tmp_path / "cfg")
    assert started.shares == (tmp_path / "cfg", tmp_path / "work")
    assert (data / "quadlet").is_dir() and (data / "storage").stat().st_mode & 0o777 == 0o700


def test_read_only_shares_are_mounted_read_only_and_recorded(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    for name in ("work", "repo", "python"):
        (tmp_path / name).mkdir()
    started = m.containers.start(
        shares=[tmp_path / "work"], readonly=[tmp_path / "repo", tmp_path / "work"]
    )
    (run,) = m.runs()
    mounts = [run[i + 1] for i, arg in enumerate(run) if arg == "-v"]
    assert f"{tmp_path / 'repo'}:{tmp_path / 'repo'}:ro" in mounts
    # Shared writable too: writable wins, one mount.
    assert [m for m in mounts if m.startswith(f"{tmp_path / 'work'}:")] == [
        f"{tmp_path / 'work'}:{tmp_path / 'work'}"
    ]
    assert started.readonly == (tmp_path / "repo",)
    assert load_target(tmp_path / "cfg") == started
    assert started.unshared([tmp_path / "repo" / "x", tmp_path / "python"]) == [tmp_path / "python"]
    m.containers.stop()
    again = m.containers.start(readonly=[tmp_path / "python"])
    assert again.readonly == (tmp_path / "repo", tmp_path / "python")


def test_a_record_without_read_only_shares_still_loads(tmp_path: Path) -> None:
    data = json.loads(target(tmp_path).as_json())
    del data["readonly"]
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "host.json").write_text(json.dumps(data))
    assert load_target(tmp_path / "cfg") == target(tmp_path)


def test_start_needs_root(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="needs root"):
        Machine(tmp_path, euid=1000).containers.start()


@pytest.mark.parametrize("share", ["/", "/etc", "/usr/lib", "/var/lib/containers/storage"])
def test_system_directories_are_not_shared(tmp_path: Path, share: str) -> None:
    m = Machine(tmp_path)
    with pytest.raises(HostError, match="refusing to share a system directory"):
        m.containers.start(shares=[Path(share)])
    assert not m.runs()


def test_a_foreign_container_with_the_name_is_left_alone(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.runner.answers[INSPECT] = ok("running \n")  # no agentcage.host label
    with pytest.raises(HostError, match="is not an agentcage host container"):
        m.containers.start()
    assert not m.runner.commands("podman", "rm") and not m.runs()


def test_start_when_running_is_a_no_op_and_a_stopped_one_is_replaced(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.containers.start()
    m.runner.answers[INSPECT] = ok("running 1\n")
    m.containers.start()
    assert len(m.runs()) == 1
    m.runner.answers[INSPECT] = ok("exited 1\n")
    m.containers.start()
    assert m.runner.commands("podman", "rm", "-f", NAME) and len(m.runs()) == 2


def test_a_new_share_for_a_running_container_is_refused_not_ignored(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    m.containers.start(shares=[tmp_path / "a"])
    m.runner.answers[INSPECT] = ok("running 1\n")
    m.containers.start(shares=[tmp_path / "a"], readonly=[tmp_path / "a" / "."])
    with pytest.raises(HostError, match=r"runs without .*/b shared") as caught:
        m.containers.start(shares=[tmp_path / "a"], readonly=[tmp_path / "b"])
    assert f"agentcage host start --share {tmp_path / 'b'}" in str(caught.value.hint)
    assert len(m.runs()) == 1


def test_a_host_container_that_does_not_boot_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agentcage.cage.host_container.BOOT_TIMEOUT", 0.5)
    m = Machine(tmp_path)
    m.runner.answers[("podman", "exec", NAME, "systemctl", "is-system-running")] = done(
        "offline\n", 1
    )
    m.runner.answers[("podman", "logs")] = ok("Failed to mount cgroup\n")
    with pytest.raises(HostError, match="did not boot") as caught:
        m.containers.start()
    assert "Failed to mount cgroup" in caught.value.message
    assert m.runner.commands("podman", "rm", "-f", NAME)
    assert load_target(tmp_path / "cfg") is None


def test_hugetlb_gets_its_own_hierarchy_on_a_hybrid_host(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    (tmp_path / "cgroup" / "unified").mkdir()
    (tmp_path / "cgroup" / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    m.containers.start()
    hugetlb = str(tmp_path / "cgroup" / "hugetlb")
    assert m.runner.commands("mount") == [
        ("mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", hugetlb)
    ]


def test_stop_keeps_the_record_forget_removes_it_but_not_while_cages_live(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    started = m.containers.start()
    m.runner.answers[INSPECT] = ok("running 1\n")
    deployment = tmp_path / "cfg" / "deployments" / "demo"
    deployment.mkdir(parents=True)
    (deployment / "config.json").write_text("{}")
    assert m.containers.stop() == started
    assert ("podman", "stop", "-t", "90", NAME) in m.runner.calls
    assert load_target(tmp_path / "cfg") == started
    with pytest.raises(HostError, match="cages still live in the host container"):
        m.containers.stop(forget=True)
    (deployment / "config.json").unlink()
    m.containers.stop(forget=True)
    assert load_target(tmp_path / "cfg") is None and not started.workdir.exists()


def test_stop_without_a_record(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="no host container is recorded"):
        Machine(tmp_path).containers.stop()


def test_status_reports_state_versions_and_an_outdated_image(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    assert m.containers.status().target is None
    started = m.containers.start()
    m.runner.answers[INSPECT] = ok("running 1\n")
    m.runner.answers[("podman", "exec", NAME, "podman", "version")] = ok("5.4.2\n")
    status = m.containers.status()
    assert status.running and status.podman == "5.4.2" and status.systemd == "running"
    assert status.image_current
    described = status.as_dict()
    assert described["state"] == "running" and "privileged" in str(described["isolation"])
    json.dumps(described)
    save_target(tmp_path / "cfg", HostTarget(NAME, "localhost/old:1", started.workdir, ()))
    m.runner.answers[INSPECT] = ok("exited 1\n")
    stale = m.containers.status()
    assert not stale.running and stale.state == "exited" and not stale.image_current


def test_shares_are_kept_across_restarts_and_only_grow(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    m.containers.start(shares=[tmp_path / "a"])
    m.containers.stop()
    again = m.containers.start()  # cages inside still bind-mount from a
    assert again.shares == (tmp_path / "cfg", tmp_path / "a")
    m.containers.stop()
    grown = m.containers.start(shares=[tmp_path / "b"])
    assert grown.shares == (tmp_path / "cfg", tmp_path / "a", tmp_path / "b")
    last = m.runs()[-1]
    assert f"{tmp_path / 'a'}:{tmp_path / 'a'}" in last
