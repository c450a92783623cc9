"""The guest's roles are read from the cage's units; what the guest cannot honour is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage.contract import SECRETS_DIR, VENV_BIN, dns_run, proxy_run
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec, build_units
from agentcage.cage.topology import Topology
from agentcage.cage.vm.guest_roles import (
    AGENT_NETNS,
    AGENT_ROOT,
    GUEST_STATE,
    GuestRole,
    ImageFacts,
    guest_roles,
)
from agentcage.cage.vm.volume_drive import GUEST_VOLUMES, guest_mount_point
from agentcage.config.constants import DENY_PORT
from agentcage.config.load import load_config
from agentcage.errors import VmmError

TOPOLOGY = Topology("vmcage", 0, "10.89.7.0/24", "10.89.8.0/24")


def _roles(tmp_path: Path, container: str = "", extra: str = "") -> list[GuestRole]:
    (tmp_path / "app").mkdir(exist_ok=True)
    path = tmp_path / "cage.yaml"
    path.write_text(
        "name: vmcage\ncontainer:\n  image: localhost/a:1\n  command: [/bin/sh, /app/run]\n"
        f"  volumes: ['{tmp_path}/app:/app:ro']\n{container}"
        "secret_injection:\n  - {env: API_KEY, inject_to: [example.com]}\n"
        f"domains: {{allow: [example.com]}}\n{extra}"
    )
    state = tmp_path / "state"
    spec = CageSpec(
        load_config(path), TOPOLOGY, Images("p", "d", "a"), HostPaths.under(state), ("API_KEY",)
    )
    facts = ImageFacts(entrypoint=("/init",), env={"PATH": "/bin", "LANG": "C"}, workdir="/w")
    return guest_roles(build_units(spec), TOPOLOGY, state, facts)


def test_each_role_runs_what_its_container_unit_runs(tmp_path: Path) -> None:
    dns, proxy, agent = _roles(tmp_path)
    transparent = True  # the schema's default: the sidecars also serve transparent capture
    assert dns.argv == (f"{VENV_BIN}/agentcage", *dns_run(TOPOLOGY, transparent).argv())
    assert proxy.argv == (f"{VENV_BIN}/agentcage", *proxy_run(TOPOLOGY, False, transparent).argv())
    assert agent.argv == ("/init", "/bin/sh", "/app/run")
    assert agent.env["API_KEY"] == "{{API_KEY}}"
    assert agent.env["HTTPS_PROXY"] == f"http://{TOPOLOGY.proxy_ip}:8080"
    assert agent.env["PATH"] == "/bin" and agent.env["LANG"] == "C"


def test_the_agent_is_confined_to_its_root_and_namespace(tmp_path: Path) -> None:
    dns, proxy, agent = _roles(tmp_path)
    assert agent.sandbox["root"] == AGENT_ROOT and agent.sandbox["netns"] == AGENT_NETNS
    assert (agent.uid, agent.gid) == (1000, 1000) and agent.sandbox["no_new_privs"]
    assert agent.sandbox["cwd"] == "/w"
    binds = {target: (source, ro) for source, target, ro in agent.sandbox["binds"]}
    assert binds["/etc/resolv.conf"] == (f"{GUEST_STATE}/agent/resolv.conf", True)
    assert binds["/etc/agentcage-ca/ca.pem"] == (f"{GUEST_STATE}/ca-public/ca.pem", True)
    assert "/app" not in binds  # copied onto the agent's root drive instead
    assert dict(agent.files)["agent/resolv.conf"].startswith(f"nameserver {TOPOLOGY.dns_ip}\n")
    for sidecar in (dns, proxy):
        assert sidecar.sandbox["root"] == "/" and sidecar.sandbox["netns"] is None
        assert sidecar.uid == 10000
        assert {GUEST_STATE, AGENT_ROOT} <= set(sidecar.sandbox["mask"])
    # Only the proxy's container has the secrets mounted; in the guest only it sees them.
    assert SECRETS_DIR in dns.sandbox["mask"] and SECRETS_DIR not in proxy.sandbox["mask"]
    assert agent.sandbox["mask"] == []  # its root is its own drive: the guest's is not there


@pytest.mark.parametrize(
    ("container", "extra", "refusal"),
    [
        ("  user: '0:0'\n", "", "non-root"),
        ("  user: ''\n", "", "non-root"),
        ("  read_only: false\n", "", "read-only root"),
        ("  add_capabilities: [NET_RAW]\n", "", "no capabilities"),
        ("  drop_capabilities: [NET_RAW]\n", "", "no capabilities"),
        ("  no_new_privileges: false\n", "", "no_new_privileges"),
        ("  ports: ['8000:8000']\n", "", "cannot have"),
        ("  podman_secrets: [TOKEN]\n", "", "secret 'TOKEN'"),
    ],
)
def test_what_the_guest_cannot_honour_is_refused(
    tmp_path: Path, container: str, extra: str, refusal: str
) -> None:
    with pytest.raises(VmmError, match=refusal):
        _roles(tmp_path, container, extra)


def test_a_named_volume_is_a_drive_of_its_own_bound_at_its_target(tmp_path: Path) -> None:
    volumes = "  named_volumes: {data: /data, Cache.v2: '/cache:ro'}\n"
    dns, proxy, agent = _roles(tmp_path, volumes)
    assert agent.volumes == ("data", "Cache.v2")  # the config's names, not Podman's
    binds = {target: (source, ro) for source, target, ro in agent.sandbox["binds"]}
    assert binds["/data"] == (guest_mount_point("data"), False)
    assert binds["/cache"] == (guest_mount_point("Cache.v2"), True)
    assert guest_mount_point("data").startswith(f"{GUEST_VOLUMES}/")
    # The sidecars' containers never mount the agent's volumes; in the guest they are hidden.
    for sidecar in (dns, proxy):
        assert sidecar.volumes == () and GUEST_VOLUMES in sidecar.sandbox["mask"]


def test_a_writable_bind_mount_is_refused_without_shares(tmp_path: Path) -> None:
    (tmp_path / "rw").mkdir()
    path = tmp_path / "cage.yaml"
    path.write_text(
        "name: vmcage\ncontainer:\n  image: localhost/a:1\n"
        f"  volumes: ['{tmp_path}/rw:/rw']\ndomains: {{allow: [example.com]}}\n"
    )
    state = tmp_path / "state"
    spec = CageSpec(load_config(path), TOPOLOGY, Images("p", "d", "a"), HostPaths.under(state))
    with pytest.raises(VmmError, match="writable bind mount") as refused:
        guest_roles(build_units(spec), TOPOLOGY, state, ImageFacts())
    assert "named_volumes" in (refused.value.hint or "")
    assert "hypervisor: qemu" in (refused.value.hint or "")


def test_default_deny_is_set_up_from_the_units_steering_one_shots(tmp_path: Path) -> None:
    dns, proxy, agent = _roles(tmp_path)
    assert proxy.steering[:3] == ("proxy", TOPOLOGY.proxy_ip, str(DENY_PORT))
    assert {"8080", "80", "443"} <= set(proxy.steering[3:])
    assert agent.steering == ("agent", TOPOLOGY.proxy_ip)
    assert dns.steering == ()
    opaque = _roles(tmp_path, extra="network: {transparent: false}\n")
    assert [role.steering for role in opaque] == [(), (), ()]
