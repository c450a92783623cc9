"""`cage create` asks this machine's Podman about the images before the config is read
(cage/asked_ahead.py, `ImageBuilder.look_ahead_usual`); what the config adds is asked
after, and an early question's error is raised where the images are built."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentcage.cage import images, remote_hosts
from agentcage.cage.asked_ahead import AskedAhead
from agentcage.cage.images import AGENT_DEBIAN_IMAGE, ImageBuilder
from agentcage.cage.podman import Completed, PodmanHost
from agentcage.cage.state import StateStore
from agentcage.cli.main import cli
from agentcage.config import load, load_config
from agentcage.errors import HostError, PodmanError
from tests.unit.cage.fakes import (
    HEALTHY_HOST,
    FakeSystemdPodman,
    RecordingRunner,
    make_cages,
    ok,
    write_config,
)

INSPECT = ("podman", "image", "inspect")
# Long enough for any thread to get going; the tests end as soon as it has.
PATIENCE = 5.0


@dataclass
class LocalImages(RecordingRunner):
    """This machine's Podman image store: every image exists but those in `missing`;
    the Debian agent image and its content-tagged original are one image."""

    missing: set[str] = field(default_factory=set)

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        refs = [a for a in argv[3:] if not a.startswith(("--", "{{"))]
        if argv[:3] == INSPECT:
            found = [_id(ref) for ref in refs if ref not in self.missing]
            code = 0 if len(found) == len(refs) else 125
            return Completed(argv, code, "".join(f"{i}\n" for i in found), "no such image")
        if argv[:3] == ("podman", "image", "exists"):
            return Completed(argv, 1 if refs[0] in self.missing else 0, "", "")
        return Completed(argv, 0, "", "")


def _id(ref: str) -> str:
    debian = ref == AGENT_DEBIAN_IMAGE or ref.startswith("localhost/agentcage-agent-debian:")
    return "sha-agent-debian" if debian else f"sha-{ref}"


def _sidecars(kind: str) -> list[str]:
    return [*ImageBuilder(RecordingRunner()).sidecar_refs(kind)[1].values()]


def _config(tmp_path: Path, image: str) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(f"name: demo\ncontainer:\n  image: {image}\n  command: [sleep, '1000']\n")
    return path


def test_cage_create_asks_about_the_images_before_it_reads_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalImages()
    monkeypatch.setattr(images, "SubprocessRunner", lambda: local)
    host = FakeSystemdPodman(answers=dict(HEALTHY_HOST))
    podman = PodmanHost(
        quadlet_dir=tmp_path / "quadlet", rootless=False, runner=host, systemd_dir=tmp_path / "s"
    )
    real_facade = remote_hosts.facade

    def facade(*args: Any, **kwargs: Any) -> Any:
        return real_facade(StateStore(tmp_path / "state"), podman, *args[2:], **kwargs)

    monkeypatch.setattr(remote_hosts, "facade", facade)
    asked_first: list[bool] = []
    real_read = load._read

    def reading(*args: Any, **kwargs: Any) -> Any:
        waited = threading.Event()
        for _ in range(int(PATIENCE / 0.01)):
            if local.commands(*INSPECT):
                break
            waited.wait(0.01)
        asked_first.append(bool(local.commands(*INSPECT)))
        return real_read(*args, **kwargs)

    monkeypatch.setattr(load, "_read", reading)
    config = _config(tmp_path, AGENT_DEBIAN_IMAGE)
    result = CliRunner().invoke(cli, ["cage", "create", "-c", str(config), "--base", "debian"])
    assert result.exit_code == 0, result.output
    # The inspect went out before the config was first read (the sidecars' config is read
    # again afterwards, for the checks' answers stored beside it: checked_ahead.py).
    assert asked_first[:1] == [True]
    (inspect,) = local.commands(*INSPECT)  # and answered for everything the cage needs
    assert inspect[-4:-2] == tuple(_sidecars("debian")) and inspect[-2] == AGENT_DEBIAN_IMAGE
    assert [c for c in local.calls if c[:2] != ("podman", "image")] == []  # no build, no pull
    assert (tmp_path / "quadlet" / "agentcage-demo-agent.container").is_file()


def test_a_config_with_another_image_has_that_one_asked_and_pulled(tmp_path: Path) -> None:
    other = "docker.io/library/debian:12"
    local = LocalImages(missing={AGENT_DEBIAN_IMAGE, other})
    builder = ImageBuilder(local)
    builder.look_ahead_usual("registry")
    sidecars = _sidecars("registry")
    # The usual agent image is not there: the sidecars are asked again on their own.
    assert [c[5:] for c in local.commands(*INSPECT)][1:] == [tuple(sidecars)]
    config = load_config(_config(tmp_path, other))
    built, agent = builder.cage_images(config, tmp_path, "registry")  # looks, then builds
    assert (agent, [built.proxy, built.dns]) == (other, sidecars)
    # The config's image alone; the sidecars, found before, not again.
    assert [c[5:] for c in local.commands(*INSPECT)][2:] == [(other,)]
    assert local.commands("podman", "pull", other)
    assert not local.commands("podman", "build")


class NoPodman(RecordingRunner):
    """A machine without `podman`: every command fails as SubprocessRunner says so."""

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        raise PodmanError(f"{argv[0]}: command not found")


def test_a_failed_early_look_is_raised_where_the_images_are_built(tmp_path: Path) -> None:
    cages, host = make_cages(tmp_path, FakeSystemdPodman())
    local = NoPodman()
    cages.builder = ImageBuilder(local)
    cages.asked_ahead = asked = AskedAhead(cages.host, "debian", cages.builder)
    assert asked.images is not None
    asked.images.exception(PATIENCE)  # failed before the create began
    with pytest.raises(PodmanError, match="podman: command not found"):
        cages.create(write_config(tmp_path), "debian")
    # Asked again by the image step (after the host check), and rolled back from there.
    assert len(local.commands(*INSPECT)) == 2
    assert host.commands("systemctl", "daemon-reload") == []
    assert not cages.store.path("demo").exists()


def test_a_failing_host_check_wins_over_a_failed_early_look(tmp_path: Path) -> None:
    host = FakeSystemdPodman(answers={("cat", "--", "/proc/1/comm"): ok("init\n")})
    cages, _ = make_cages(tmp_path, host)
    cages.builder = ImageBuilder(NoPodman())
    cages.asked_ahead = AskedAhead(cages.host, "debian", cages.builder)
    with pytest.raises(HostError, match="PID 1 is 'init'"):
        cages.create(write_config(tmp_path), "debian")
    assert not cages.store.path("demo").exists()
