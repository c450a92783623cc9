"""A microVM cage's deployed units and its plan: one hardened container, the roles as data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from agentcage.cage.contract import SECRETS_DIR
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec, build_units
from agentcage.cage.topology import Topology
from agentcage.cage.vm.guest_roles import ImageFacts, guest_roles
from agentcage.cage.vm.vm_container import kvm_access_group, vm_units
from agentcage.cage.vm.vm_plan import PLAN_FILE, VmPlan, load_plan
from agentcage.config.load import load_config

TOPOLOGY = Topology("vmcage", 0, "10.89.7.0/24", "10.89.8.0/24")


def _spec(tmp_path: Path, secrets: tuple[str, ...] = ("API_KEY",)) -> CageSpec:
    path = tmp_path / "cage.yaml"
    path.write_text(
        "name: vmcage\nisolation: firecracker\ncontainer:\n  image: localhost/a:1\n"
        "secret_injection:\n  - {env: API_KEY, inject_to: [example.com]}\n"
        "domains: {allow: [example.com]}\n"
    )
    images = Images("localhost/agentcage-vm:1", "localhost/agentcage-vm:1", "localhost/a:1")
    return CageSpec(load_config(path), TOPOLOGY, images, HostPaths.under(tmp_path / "s"), secrets)


def test_a_microvm_cage_deploys_its_way_out_and_one_hardened_container(tmp_path: Path) -> None:
    units = vm_units(_spec(tmp_path), "localhost/agentcage-vm:1", "/s", "/s/vm", 1408, None)
    assert sorted(units.files) == ["agentcage-vmcage-ext.network", "agentcage-vmcage-vm.container"]
    text = units.rendered()["agentcage-vmcage-vm.container"]
    for line in (
        "ReadOnly=true",
        "DropCapability=ALL",
        "NoNewPrivileges=true",
        "User=10000",
        "PodmanArgs=--memory=1408m",
        "Notify=true",
        "Restart=no",
        "Exec=vm run /s/vm",
        "Volume=/s:/s:ro,U",
        "Volume=/s/vm:/s/vm:rw,U",
        f"Secret=agentcage-vmcage-API_KEY,type=mount,target={SECRETS_DIR}/API_KEY,",
        f"Network=agentcage-vmcage-ext.network:ip={TOPOLOGY.proxy_external_ip},",
    ):
        assert line in text, (line, text)
    # No internal network, no agent or sidecar container on the host: they are in the guest.
    assert "-int" not in text and "AddDevice" not in text
    with_kvm = vm_units(_spec(tmp_path), "i", "/s", "/s/vm", 1, "994")
    assert "AddDevice=/dev/kvm" in with_kvm.rendered()["agentcage-vmcage-vm.container"]
    # Without the device's group, uid 10000 cannot open a 0660 root:kvm /dev/kvm.
    assert "PodmanArgs=--group-add=994" in with_kvm.rendered()["agentcage-vmcage-vm.container"]
    # Only a Firecracker cage's container may make its guest's TAP.
    for weaker in ("NET_ADMIN", "/dev/net/tun", "ip_forward", "firecracker"):
        assert weaker not in with_kvm.rendered()["agentcage-vmcage-vm.container"]


def test_a_rootless_microvm_container_runs_as_the_user_so_the_cli_keeps_its_files(
    tmp_path: Path,
) -> None:
    rootful = vm_units(_spec(tmp_path), "i", "/s", "/s/vm", 1, None)
    assert "keep-id" not in rootful.rendered()["agentcage-vmcage-vm.container"]
    rootless = vm_units(_spec(tmp_path), "i", "/s", "/s/vm", 1, "keep-groups", rootless=True)
    text = rootless.rendered()["agentcage-vmcage-vm.container"]
    # uid 10000 inside is the user outside: `:U` chowns nothing away from the CLI.
    assert "PodmanArgs=--userns=keep-id:uid=10000,gid=10000" in text
    assert "PodmanArgs=--group-add=keep-groups" in text
    for kept in ("User=10000", "DropCapability=ALL", "NoNewPrivileges=true", "ReadOnly=true"):
        assert kept in text
    # Rootless Podman on cgroup v1 cannot set limits: dropped, as for a container cage.
    spec = dataclasses.replace(_spec(tmp_path), cgroups=False)
    bare = vm_units(spec, "i", "/s", "/s/vm", 1408, None, rootless=True)
    text = bare.rendered()["agentcage-vmcage-vm.container"]
    assert "CgroupsMode=disabled" in text and "--memory=" not in text and "PidsLimit" not in text
    assert "keep-id" in text


def test_a_firecracker_cage_gets_the_tap_it_needs_and_the_hosts_binary(tmp_path: Path) -> None:
    binary = ("/opt/fc/firecracker", "/usr/local/bin/firecracker")
    units = vm_units(_spec(tmp_path), "i", "/s", "/s/vm", 1, "994", binary)
    text = units.rendered()["agentcage-vmcage-vm.container"]
    for line in (
        "AddDevice=/dev/kvm",
        "AddDevice=/dev/net/tun",
        "DropCapability=ALL",
        "AddCapability=NET_ADMIN",
        "Sysctl=net.ipv4.ip_forward=1",
        "Volume=/opt/fc/firecracker:/usr/local/bin/firecracker:ro",
        "NoNewPrivileges=true",
        "User=10000",
    ):
        assert line in text, (line, text)


def test_the_plan_carries_the_roles_to_the_container_unchanged(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    state = tmp_path / "s"
    roles = guest_roles(build_units(spec), TOPOLOGY, state, ImageFacts(env={"PATH": "/bin"}))
    run = state / "vm"
    plan = VmPlan(
        name="vmcage", vcpus=1, mem_mib=1024, qemu="qemu-system-x86_64", accel="tcg",
        kernel=run / "vmlinuz", initrd=run / "initrd.img", root=run / "root.ext4",
        agent_drive=run / "agent.ext4", address=f"{TOPOLOGY.proxy_external_ip}/24",
        gateway="10.89.8.1", topology=TOPOLOGY, state_dir=state, run_dir=run,
        resolvers=("10.250.0.10",), roles=tuple(roles),
    )  # fmt: skip
    run.mkdir(parents=True)
    (run / PLAN_FILE).write_text(plan.as_json())
    loaded = load_plan(run)
    # Through JSON, as the guest agent gets it anyway: tuples come back as lists.
    assert loaded.as_json() == plan.as_json()
    assert loaded.roles[2].state_dirs == plan.roles[2].state_dirs
    assert loaded.topology == TOPOLOGY and loaded.kernel == run / "vmlinuz"
    assert plan.control == run / "control.sock"
    assert (loaded.monitor, loaded.firecracker) == ("qemu", "")  # a plan from before reads so


def test_the_kvm_group_is_the_devices_group_rootful_and_kept_groups_rootless(
    tmp_path: Path,
) -> None:
    device = tmp_path / "kvm"
    device.write_text("")
    assert kvm_access_group(rootless=False, device=device) == str(device.stat().st_gid)
    # The host's gids are not mapped into a rootless user namespace.
    assert kvm_access_group(rootless=True, device=device) == "keep-groups"
