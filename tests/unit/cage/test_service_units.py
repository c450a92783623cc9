"""Plain systemd services from the quadlet model: refusals, escaping, and `cage create`.

tests/integration/cage/test_service_units.py compares these services with the ones the
real quadlet generator makes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec, CageUnits, build_units
from agentcage.cage.service_units import to_services
from agentcage.cage.topology import Topology, subnets_for
from agentcage.cage.unit import RenderError, UnitFile, parse
from agentcage.config import LoadContext, load_config
from agentcage.errors import AgentcageError, PodmanError
from tests.unit.cage.fakes import FakeBuilder, make_cages, ok, write_config

IMAGES = Images("localhost/p:1", "localhost/d:1", "localhost/a:1")


def _units(tmp_path: Path, extra: str = "") -> CageUnits:
    path = write_config(tmp_path, extra=extra)
    config = load_config(path, context=LoadContext(base_dir=tmp_path, check_paths=False))
    topology = Topology(config.name, 3, *subnets_for(3))
    return build_units(CageSpec(config, topology, IMAGES, HostPaths.under(tmp_path / "s")))


def test_every_quadlet_file_becomes_the_service_quadlet_would_name(tmp_path: Path) -> None:
    units = _units(tmp_path)
    services = to_services(units, rootless=False).files
    assert sorted(services) == [
        "agentcage-demo-agent.service",
        "agentcage-demo-dns.service",
        "agentcage-demo-ext-network.service",
        "agentcage-demo-int-network.service",
        "agentcage-demo-proxy.service",
    ]


def test_an_unknown_quadlet_key_is_refused_not_dropped(tmp_path: Path) -> None:
    units = _units(tmp_path)
    units.files["agentcage-demo-agent.container"].add("Container", "HostName", "x")
    with pytest.raises(RenderError, match=r"HostName= has no plain-systemd rendering"):
        to_services(units, rootless=False)


def test_a_firecracker_vm_container_keeps_its_devices_on_podman_4_3(tmp_path: Path) -> None:
    units = _units(tmp_path)
    unit = units.files["agentcage-demo-proxy.container"]
    unit.add("Container", "AddDevice", "/dev/kvm")
    unit.add("Container", "AddDevice", "/dev/net/tun")
    text = to_services(units, rootless=False).rendered()["agentcage-demo-proxy.service"]
    assert "--device /dev/kvm" in text and "--device /dev/net/tun" in text


def test_config_text_cannot_reach_specifiers_variables_or_a_second_command(tmp_path: Path) -> None:
    units = _units(tmp_path)
    agent = units.files["agentcage-demo-agent.container"]
    agent.sections["Container"] = [e for e in agent.sections["Container"] if e.key != "Exec"]
    agent.add("Container", "Exec", ("echo", "%h", "$HOME", ";", "reboot"))
    text = to_services(units, rootless=False).rendered()["agentcage-demo-agent.service"]
    (start,) = parse(text).get("Service", "ExecStart")
    assert start[-5:] == ("echo", "%h", "$HOME", ";", "reboot")  # one command, literal
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert line.endswith('echo %%h $$HOME ";" reboot')
    assert "--cidfile=%t/%N.cid" in line  # the renderer's own specifier stays live


def test_rootless_services_do_not_wait_for_network_online(tmp_path: Path) -> None:
    services = to_services(_units(tmp_path), rootless=True).files
    for unit in services.values():
        assert "network-online.target" not in unit.get("Unit", "Wants")


def test_notify_healthy_without_a_health_command_is_refused() -> None:
    units = CageUnits(
        {
            "c.container": UnitFile()
            .add("Container", "Image", "i")
            .add("Container", "ContainerName", "c")
            .add("Container", "Notify", "healthy")
        }
    )
    with pytest.raises(RenderError, match="Notify=healthy needs a health command"):
        to_services(units, rootless=False)


def test_create_on_podman_4_3_writes_services_not_quadlets(tmp_path: Path) -> None:
    cages, runner = make_cages(tmp_path)
    runner.answers[("podman", "version")] = ok("4.3.1\n")
    cages.create(write_config(tmp_path))
    assert not (tmp_path / "quadlet").exists()
    written = sorted(path.name for path in (tmp_path / "systemd").iterdir())
    assert "agentcage-demo-agent.service" in written
    assert "agentcage-demo-int-network.service" in written
    assert ("systemctl", "start", "agentcage-demo-agent.service") in runner.calls
    cages.destroy("demo")
    assert list((tmp_path / "systemd").iterdir()) == []


def test_create_asks_for_podman_before_building_anything(tmp_path: Path) -> None:
    cages, runner = make_cages(tmp_path)
    runner.answers[("podman", "version")] = PodmanError("podman: command not found")
    with pytest.raises(AgentcageError, match="podman"):
        cages.create(write_config(tmp_path))
    assert isinstance(cages.builder, FakeBuilder)
    assert cages.builder.built == []


def test_an_update_after_a_podman_upgrade_leaves_no_shadowing_services(tmp_path: Path) -> None:
    cages, runner = make_cages(tmp_path)
    runner.answers[("podman", "version")] = ok("4.3.1\n")
    cages.create(write_config(tmp_path))
    assert (tmp_path / "systemd" / "agentcage-demo-agent.service").exists()
    upgraded, runner = make_cages(tmp_path, runner)
    runner.answers[("podman", "version")] = ok("5.4.2\n")
    upgraded.update("demo")
    # /etc/systemd/system would win over the generator's services: nothing may stay there.
    assert list((tmp_path / "systemd").iterdir()) == []
    assert (tmp_path / "quadlet" / "agentcage-demo-agent.container").exists()
