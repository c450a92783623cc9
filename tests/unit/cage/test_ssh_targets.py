"""SSH host targets: addresses, Podman machine discovery, the ssh command line, the records."""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cage import remote_hosts
from agentcage.cage.host_files import RemoteFiles, on_target
from agentcage.cage.layout import HostPaths
from agentcage.cage.podman import Completed
from agentcage.cage.podman_machine import inspect_machine, parse_inspect
from agentcage.cage.remote_hosts import RemoteHosts, cage_host, record_cage_host
from agentcage.cage.ssh_target import (
    SshRunner,
    SshTarget,
    connection_hint,
    parse_address,
    socket_dir,
)
from agentcage.cage.state import StateStore
from agentcage.cli.main import cli
from agentcage.errors import ConfigError, HostError, PodmanError, UnreachableError
from tests.unit.cage.fakes import RecordingRunner, make_cages, ok, write_config
from tests.unit.cage.ssh_fakes import ShellRunner, known_target, with_store

# `podman machine inspect` on macOS, Podman 5.x (applehv), trimmed to what matters and
# shaped as Podman prints it; a machine on Podman 4.x (qemu) prints the same SSHConfig.
MACHINE_INSPECT = """[
     {
          "ConfigDir": {"Path": "/Users/ada/.config/containers/podman/machine/applehv"},
          "ConnectionInfo": {
               "PodmanSocket": {"Path": "/var/folders/x/T/podman/podman-machine-default-api.sock"},
               "PodmanPipe": null
          },
          "Created": "2026-11-02T09:12:40.123456+01:00",
          "LastUp": "2026-12-05T08:01:02.5+01:00",
          "Name": "podman-machine-default",
          "Resources": {"CPUs": 4, "DiskSize": 100, "Memory": 4096, "USBs": []},
          "SSHConfig": {
               "IdentityPath": "/Users/ada/.local/share/containers/podman/machine/machine",
               "Port": 53871,
               "RemoteUsername": "core"
          },
          "State": "running",
          "UserModeNetworking": true,
          "Rootful": false,
          "Rosetta": true
     }
]
"""


def _machine(**changes: object) -> str:
    data = json.loads(MACHINE_INSPECT)
    data[0].update(changes)
    return json.dumps(data)


def test_podman_machine_inspect_gives_port_user_and_key() -> None:
    target = parse_inspect("mac", MACHINE_INSPECT)
    assert (target.user, target.host, target.port) == ("core", "127.0.0.1", 53871)
    assert target.identity == Path("/Users/ada/.local/share/containers/podman/machine/machine")
    assert target.machine == "podman-machine-default"
    assert target.address == "ssh://core@127.0.0.1:53871"


def test_a_rootful_machine_is_reached_as_root_with_the_same_key() -> None:
    target = parse_inspect("mac", _machine(Rootful=True))
    assert target.user == "root" and target.port == 53871


def test_a_stopped_machine_says_how_to_start_it() -> None:
    with pytest.raises(HostError) as caught:
        parse_inspect("mac", _machine(State="stopped"))
    assert caught.value.hint == "`podman machine start podman-machine-default`"


@pytest.mark.parametrize("text", ["", "[]", "{}", '[{"Name": "m"}]', "not json"])
def test_unexpected_inspect_output_is_an_error_with_a_way_around(text: str) -> None:
    with pytest.raises(HostError) as caught:
        parse_inspect("mac", text)
    assert "ssh://USER@127.0.0.1:PORT" in (caught.value.hint or "")


def test_ssh_addresses() -> None:
    target = parse_address("box", "ssh://ops@build.example:2222", Path("/k"))
    assert (target.user, target.host, target.port, target.identity) == (
        "ops",
        "build.example",
        2222,
        Path("/k"),
    )
    assert parse_address("box", "ssh://root@10.0.0.5").port == 22


@pytest.mark.parametrize(
    "url", ["root@host", "http://root@host", "ssh://host", "ssh://u@h:99999", "ssh://u@h/path"]
)
def test_bad_addresses_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_address("box", url)


def test_every_command_shares_one_connection_and_is_quoted_for_the_remote_shell(
    tmp_path: Path,
) -> None:
    target = SshTarget("box", "ops", "h", 2222, Path("/keys/id"))
    runner = SshRunner(target, tmp_path / "ssh")
    argv = runner.remote(["sh", "-c", 'echo "$1"; id', "sh", "a b;c"])
    options = " ".join(argv)
    assert "ControlMaster=auto" in options and "ControlPersist=" in options
    # A target that stops answering ends the master (and its sessions) in 30 s.
    assert "ServerAliveInterval=10" in options and "ServerAliveCountMax=3" in options
    assert f"ControlPath={socket_dir()}/%C" in options
    assert f"UserKnownHostsFile={tmp_path / 'ssh'}/known_hosts" in options
    assert "StrictHostKeyChecking=yes" in options and "BatchMode=yes" in options
    assert argv[argv.index("-i") + 1] == "/keys/id"
    assert argv[-3:-1] == ("ops@h", "--")
    # ssh hands one string to the remote shell: it must split back into the same argv.
    assert shlex.split(argv[-1]) == ["sh", "-c", 'echo "$1"; id', "sh", "a b;c"]
    first = SshRunner(target, tmp_path / "ssh", first_contact=True).remote(["true"])
    assert "StrictHostKeyChecking=accept-new" in " ".join(first)


def test_a_refused_connection_names_the_target_and_what_to_check(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = SshTarget("box", "ops", "127.0.0.1", port)
    # A config directory this deep once put ssh's socket past the 108-byte limit.
    deep = tmp_path / ("d" * 60) / "agentcage" / "ssh"
    with pytest.raises(UnreachableError) as caught:
        SshRunner(target, deep).run(["podman", "version"])
    assert f"cannot reach host target box (ssh://ops@127.0.0.1:{port})" in caught.value.message
    assert "is sshd running, and is the port right?" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("said", "hint"),
    [
        ("Host key verification failed.", "host key"),
        ("ops@h: Permission denied (publickey).", "authorized_keys"),
        ("ssh: connect to host h port 22: Connection timed out", "is it up"),
        # A VM's forwarded port with sshd stopped (tests/e2e/test_remote.py on the VM).
        ("kex_exchange_identification: read: Connection reset by peer", "is sshd running"),
        ("kex_exchange_identification: Connection closed by remote host", "is sshd running"),
    ],
)
def test_connection_hints(said: str, hint: str) -> None:
    assert hint in connection_hint(SshTarget("box", "ops", "h"), said)


def test_missing_podman_on_the_target_says_install_it(tmp_path: Path) -> None:
    runner = SshRunner(SshTarget("box", "ops", "h"), tmp_path)
    error = runner.failed(Completed(("podman", "ps"), 127, "", "sh: 1: podman: not found"))
    assert error.hint == "install Podman (4.4 or newer) on h"
    assert error.message.startswith("on host target box:")


def test_state_paths_move_into_the_targets_copy(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "cfg")
    target = SshTarget("box", "core", "h", uid=501, home="/var/home/core")
    files = RemoteFiles(SshRunner(target, tmp_path), store.deployments)
    moved = on_target(files, HostPaths.under(store.path("demo")))
    assert moved.ca_dir == Path("/var/home/core/.local/share/agentcage/cages/demo/ca")
    assert moved.proxy_audit_dir == Path(
        "/var/home/core/.local/share/agentcage/cages/demo/audit/proxy"
    )
    assert files.target_path(Path("/srv/data")) == Path("/srv/data")  # a bind mount there
    assert target.rootless and target.quadlet_dir == Path(
        "/var/home/core/.config/containers/systemd"
    )


def test_targets_are_kept_by_name_and_each_cage_remembers_its_own(tmp_path: Path) -> None:
    hosts = RemoteHosts(tmp_path / "cfg")
    store = StateStore(tmp_path / "cfg")
    target = SshTarget("box", "root", "h", 22, None, uid=0, home="/root")
    hosts._save({"box": target})
    assert hosts.get("box") == target
    store.write("demo", "config.json", "{}")
    record_cage_host(store, "demo", "box")
    assert cage_host(store, "demo") == "box"
    with pytest.raises(HostError, match="cages still run on host target box: demo"):
        hosts.remove("box", store)
    with pytest.raises(ConfigError, match="no host target named 'nope'"):
        hosts.get("nope")


def _remote_files(tmp_path: Path) -> tuple[RemoteFiles, StateStore, Path]:
    store = StateStore(tmp_path / "cfg")
    home = tmp_path / "remote-home"
    target = SshTarget("box", "root", "h", uid=0, home=str(home))
    return RemoteFiles(ShellRunner(target, tmp_path / "ssh"), store.deployments), store, home


def test_unit_files_are_written_listed_and_removed_through_the_channel(tmp_path: Path) -> None:
    files, _, home = _remote_files(tmp_path)
    units = home / "units"
    files.write(units / "agentcage-demo-agent.container", "[Container]\nLabel=x\n", 0o644)
    files.write(units / "agentcage-demo-int.network", 'it\'s "quoted" $HOME\n', 0o600)
    assert (units / "agentcage-demo-int.network").stat().st_mode & 0o777 == 0o600
    assert files.read_matching(units, "agentcage-demo-") == {
        units / "agentcage-demo-agent.container": "[Container]\nLabel=x\n",
        units / "agentcage-demo-int.network": 'it\'s "quoted" $HOME\n',
    }
    assert files.read_matching(home / "absent", "agentcage-demo-") == {}
    files.unlink([units / "agentcage-demo-agent.container"])
    assert [p.name for p in units.iterdir()] == ["agentcage-demo-int.network"]


def test_state_files_travel_there_and_audit_logs_come_back(tmp_path: Path) -> None:
    files, store, home = _remote_files(tmp_path)
    local = store.directory("demo")
    for name, text in {
        "sidecar/config.yaml": "policy",
        "ca/ca.pem": "KEY",
        "canary-seed": "s",
    }.items():
        (local / name).parent.mkdir(exist_ok=True)
        (local / name).write_text(text)
    (local / "ca/ca.pem").chmod(0o600)
    files.publish(local, ())
    remote = home / ".local/share/agentcage/cages/demo"
    assert (remote / "sidecar/config.yaml").read_text() == "policy"
    assert (remote / "ca/ca.pem").stat().st_mode & 0o777 == 0o600
    assert not (remote / "canary-seed").exists()  # only what the containers mount
    assert (remote / "audit/proxy").is_dir() and (remote / "metrics/dns").is_dir()
    (remote / "audit/proxy/proxy.jsonl").write_text('{"verdict":"block"}\n')
    files.collect(local)
    assert (local / "audit/proxy/proxy.jsonl").read_text() == '{"verdict":"block"}\n'
    files.drop(local)
    assert not remote.exists()
    files.collect(local)  # nothing there any more: nothing to bring back, no error


def test_a_machine_is_asked_by_name_and_a_failure_says_how_to_list_them() -> None:
    runner = RecordingRunner(answers={("podman", "machine", "inspect"): ok(MACHINE_INSPECT)})
    assert inspect_machine(runner, "mac", "dev").port == 53871
    assert runner.calls == [("podman", "machine", "inspect", "dev")]
    failing = RecordingRunner(
        answers={("podman", "machine", "inspect"): Completed((), 125, "", "VM does not exist")}
    )
    with pytest.raises(HostError, match="VM does not exist") as caught:
        inspect_machine(failing, "mac", None)
    assert "podman machine list" in (caught.value.hint or "")


class _ImageTarget(ShellRunner):
    """A target whose Podman knows the images in `ids`; `pipe` records what is copied."""

    ids: dict[str, str]
    copied: list[tuple[str, ...]]

    arch = "amd64"

    def run(self, argv, *, input=None, check=True, timeout=300.0):  # type: ignore[no-untyped-def]
        if list(argv[:2]) == ["podman", "info"]:
            return Completed(tuple(argv), 0, self.arch + "\n", "")
        if list(argv[:3]) == ["podman", "image", "inspect"]:
            found = self.ids.get(argv[-1])
            return Completed(tuple(argv), 0 if found else 125, (found or "") + "\n", "")
        return super().run(argv, input=input, check=check, timeout=timeout)

    def pipe(self, source, argv, timeout=1800):  # type: ignore[no-untyped-def]
        self.copied.append((*source, "|", *argv))


def test_only_images_the_target_lacks_by_id_are_copied(tmp_path: Path) -> None:
    here = RecordingRunner(
        answers={
            ("podman", "image", "inspect", "--format", "{{.Id}}", ref): ok(f"{ident}\n")
            for ref, ident in {"p:1": "sha-p", "d:1": "sha-d", "a:1": "sha-a"}.items()
        }
    )
    target = _ImageTarget(SshTarget("box", "root", "h"), tmp_path)
    target.ids, target.copied = {"p:1": "sha-p", "d:1": "sha-OLD"}, []
    files = RemoteFiles(target, tmp_path, local=here)
    files.provide_images(["p:1", "d:1", "a:1", "registry.example/x:2"])
    # d:1 differs, a:1 is missing there; p:1 is the same; x:2 is not here (the target pulls).
    assert target.copied == [("podman", "save", "-m", "d:1", "a:1", "|", "podman", "load", "-q")]
    target.copied = []
    target.ids = {"p:1": "sha-p", "d:1": "sha-d", "a:1": "sha-a"}
    files.provide_images(["p:1", "d:1", "a:1"])
    assert target.copied == []


def test_images_built_for_another_arch_are_refused_before_copying(tmp_path: Path) -> None:
    here = RecordingRunner(
        answers={
            ("podman", "image", "inspect", "--format", "{{.Id}}", "p:1"): ok("sha-p\n"),
            ("podman", "image", "inspect", "--format", "{{.Architecture}}", "p:1"): ok("amd64\n"),
        }
    )
    target = _ImageTarget(SshTarget("pi", "root", "h"), tmp_path)
    target.ids, target.copied, target.arch = {}, [], "arm64"
    files = RemoteFiles(target, tmp_path, local=here)
    with pytest.raises(PodmanError) as caught:
        files.provide_images(["p:1"])
    assert "built here for amd64, and pi runs arm64" in caught.value.message
    assert target.copied == []
    target.arch = "amd64"
    files.provide_images(["p:1"])
    assert target.copied == [("podman", "save", "p:1", "|", "podman", "load", "-q")]


def test_create_with_host_records_the_target_and_later_commands_find_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = known_target(tmp_path, monkeypatch, SshTarget("box", "root", "h"))
    remote, _ = make_cages(tmp_path)
    asked: list[str] = []

    def podman_host(self: RemoteHosts, name: str, store: StateStore, progress: object) -> object:
        asked.append(name)
        return remote.host

    monkeypatch.setattr(remote_hosts.RemoteHosts, "podman_host", podman_host)
    monkeypatch.setattr(remote_hosts, "facade", lambda *a, **k: with_store(remote, k, store))
    invoke = CliRunner().invoke
    created = invoke(cli, ["cage", "create", "-c", str(write_config(tmp_path)), "--host", "box"])
    assert created.exit_code == 0, created.output
    assert cage_host(store, "demo") == "box" and asked == ["box"]
    assert invoke(cli, ["cage", "stop", "demo"]).exit_code == 0  # no --host: from the record
    assert asked == ["box", "box"]
    listed = invoke(cli, ["host", "list", "--json"])
    assert json.loads(listed.output)[0]["cages"] == ["demo"]


def test_ssh_sockets_live_in_a_short_private_directory(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    made = socket_dir({"XDG_RUNTIME_DIR": str(runtime)})
    assert made.parent == runtime and made.stat().st_mode & 0o777 == 0o700
    made.chmod(0o755)  # someone else could reach its sockets
    with pytest.raises(HostError, match="not a private directory"):
        socket_dir({"XDG_RUNTIME_DIR": str(runtime)})
