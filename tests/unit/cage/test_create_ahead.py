"""`cage create` asks its first questions at once and early (cage/asked_ahead.py), makes
the cage's CA while systemd reloads, and validates the config once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentcage.cage import deploy, host_ready, layout, lifecycle, remote_hosts
from agentcage.cage.ca import KEY_AND_CERT
from agentcage.cage.contract import SIDECAR_CONFIG_NAME
from agentcage.cage.podman import Completed, PodmanHost
from agentcage.cage.state import StateStore
from agentcage.cli.main import cli
from agentcage.config import load
from agentcage.errors import HostError, PodmanError, StateError
from tests.unit.cage.fakes import FakeSystemdPodman, make_cages, ok, write_config

PRINT = ("sh", "-c", host_ready.FINGERPRINT)
SECRETS = ("podman", "secret", "ls")
# Long enough for any thread to get going; the tests end as soon as the event is set.
PATIENCE = 5.0


@dataclass
class Overlapping(FakeSystemdPodman):
    """Holds the fingerprint's answer until the secret listing has been asked too."""

    listed: threading.Event = field(default_factory=threading.Event)
    seen_together: list[bool] = field(default_factory=list)

    def answer(self, key: tuple[str, ...]) -> Completed | PodmanError | None:
        if key[:3] == SECRETS:
            self.listed.set()
        elif key == PRINT:
            self.seen_together.append(self.listed.wait(PATIENCE))
        return super().answer(key)


def test_the_fingerprint_and_the_secrets_are_asked_at_once(tmp_path: Path) -> None:
    host = Overlapping(answers={PRINT: ok("boot-1\n4242\n0\n")})
    cages, _ = make_cages(tmp_path, host)
    host.secrets["agentcage-demo-API_KEY"] = "top-secret"
    cages.create(write_config(tmp_path))
    # One round trip's wait, not two: the listing went out before the fingerprint's answer.
    assert host.seen_together == [True]
    assert len(host.commands(*SECRETS)) == 1  # and was not asked again
    quadlets = "".join(p.read_text() for p in (tmp_path / "quadlet").iterdir())
    assert "agentcage-demo-API_KEY" in quadlets  # the early listing is the one the units use


def test_a_failing_host_check_still_writes_nothing(tmp_path: Path) -> None:
    host = FakeSystemdPodman(answers={("cat", "--", "/proc/1/comm"): ok("init\n")})
    cages, _ = make_cages(tmp_path, host)
    with pytest.raises(HostError, match="PID 1 is 'init'"):
        cages.create(write_config(tmp_path))
    assert not cages.store.path("demo").exists()
    assert not (tmp_path / "quadlet").exists() or not list((tmp_path / "quadlet").iterdir())


@dataclass
class SlowReload(FakeSystemdPodman):
    """A `daemon-reload` that lasts until `ca` exists (or PATIENCE passes)."""

    ca: Path = Path("/nonexistent")
    ca_made_before: list[bool] = field(default_factory=list)
    ca_made_meanwhile: list[bool] = field(default_factory=list)

    def answer(self, key: tuple[str, ...]) -> Completed | PodmanError | None:
        if key == ("systemctl", "daemon-reload"):
            self.ca_made_before.append(self.ca.exists())
            waited = threading.Event()
            for _ in range(int(PATIENCE / 0.01)):
                if self.ca.exists():
                    break
                waited.wait(0.01)
            self.ca_made_meanwhile.append(self.ca.exists())
        return super().answer(key)


def test_the_ca_is_made_while_systemd_reloads(tmp_path: Path) -> None:
    host = SlowReload()
    cages, _ = make_cages(tmp_path, host)
    host.ca = layout.host_paths(cages.store, "demo").ca_dir / KEY_AND_CERT
    cages.create(write_config(tmp_path))
    # The reload was under way when the CA was made (it waited for it), and the agent
    # was started after both.
    assert (host.ca_made_before, host.ca_made_meanwhile) == ([False], [True])
    assert host.units.get("agentcage-demo-agent.service") == "active"


def test_a_ca_that_fails_during_the_reload_is_rolled_back_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)

    def no_ca(*args: object) -> None:
        raise StateError("disk full")

    monkeypatch.setattr(deploy, "ensure_ca", no_ca)
    with pytest.raises(StateError, match="disk full"):
        cages.create(write_config(tmp_path))
    reloads = [i for i, c in enumerate(host.calls) if c[:2] == ("systemctl", "daemon-reload")]
    assert len(reloads) == 2  # create's, then the rollback's once the units were gone
    assert not host.commands("systemctl", "start")
    assert not cages.store.path("demo").exists()
    assert not list((tmp_path / "quadlet").iterdir())


def test_the_facade_asks_before_it_builds_the_cages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`facade(ask_ahead=True)` sends both questions before the facade's module is needed."""
    host = FakeSystemdPodman(answers={PRINT: ok("boot-1\n4242\n0\n")})
    asked_before: list[bool] = []

    class Watching(lifecycle.Cages):
        def __init__(self, **kwargs: Any) -> None:
            deadline = threading.Event()
            for _ in range(int(PATIENCE / 0.01)):
                if host.commands(*PRINT) and host.commands(*SECRETS):
                    break
                deadline.wait(0.01)
            asked_before.append(bool(host.commands(*PRINT) and host.commands(*SECRETS)))
            super().__init__(**kwargs)

    monkeypatch.setattr(lifecycle, "Cages", Watching)
    podman = PodmanHost(quadlet_dir=tmp_path / "q", rootless=False, runner=host)
    cages = remote_hosts.facade(StateStore(tmp_path / "state"), podman, lambda _: None, True)
    assert asked_before == [True]
    assert cages.asked_ahead is not None
    assert cages.asked_ahead.fingerprint.result(PATIENCE).startswith("boot-1")
    plain = remote_hosts.facade(StateStore(tmp_path / "state"), podman, lambda _: None)
    assert plain.asked_ahead is None


def test_cage_create_validates_the_config_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cages, _ = make_cages(tmp_path, FakeSystemdPodman())
    wanted: list[object] = []

    def factory(*args: object, **kwargs: object) -> lifecycle.Cages:
        wanted.append(kwargs.get("ask_ahead", args[3] if len(args) > 3 else False))
        return cages

    monkeypatch.setattr(remote_hosts, "facade", factory)
    reads: list[object] = []
    real_read = load._read

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(args[0])
        return real_read(*args, **kwargs)

    monkeypatch.setattr(load, "_read", counting)
    config = write_config(tmp_path)
    result = CliRunner().invoke(cli, ["cage", "create", "-c", str(config), "--base", "debian"])
    assert result.exit_code == 0, result.output
    # Once; the sidecars' config is validated again for their answers (checked_ahead.py).
    assert [r for r in reads if Path(r) == config] == [config]
    assert all(Path(r).name == SIDECAR_CONFIG_NAME for r in reads if Path(r) != config)
    assert wanted == [True]  # and `create` asked its first questions ahead


def test_a_create_that_stops_early_does_not_wait_for_a_slow_host(tmp_path: Path) -> None:
    """An invalid config ends `cage create` at once even while the host is still asked."""
    script = (
        "import time\n"
        "from pathlib import Path\n"
        "from agentcage.cage.asked_ahead import AskedAhead\n"
        "from agentcage.cage.podman import Completed, PodmanHost\n"
        "class Hung:\n"
        "    def run(self, argv, **kwargs):\n"
        "        time.sleep(60)\n"
        "        return Completed(tuple(argv), 0, '', '')\n"
        "AskedAhead(PodmanHost(quadlet_dir=Path('q'), rootless=False, runner=Hung()))\n"
        "raise SystemExit(2)  # as click does for a config error\n"
    )
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=50, check=False)
    assert result.returncode == 2
    assert time.monotonic() - start < 30  # not the 60 s the host would take
