"""Writable bind mounts in a QEMU microVM: virtiofs shares, their command lines and refusals."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from agentcage.cage import image_inputs
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec, build_units
from agentcage.cage.topology import Topology
from agentcage.cage.unit import UnitFile
from agentcage.cage.vm import virtiofs
from agentcage.cage.vm.agent_root import agent_root_image
from agentcage.cage.vm.firecracker_api import api_calls
from agentcage.cage.vm.guest_roles import GuestRole, ImageFacts, guest_roles
from agentcage.cage.vm.machine import Drive, Share, StreamNetwork
from agentcage.cage.vm.qemu_argv import qemu_argv
from agentcage.cage.vm.virtiofs import (
    GUEST_SHARES,
    VIRTIOFSD_DIR,
    guest_share_point,
    image_hook,
    share_tag,
    virtiofsd_argv,
)
from agentcage.cage.vm.vm_cage import check_share_owner
from agentcage.cage.vm.vm_container import vm_units
from agentcage.cage.vm.vm_plan import VmPlan
from agentcage.cage.vm.vm_run import machine_spec
from agentcage.config.load import load_config
from agentcage.errors import ConfigError, VmmError
from tests.unit.cage.vm.specs import spec

TOPOLOGY = Topology("vmcage", 0, "10.89.7.0/24", "10.89.8.0/24")


def _spec(tmp_path: Path, extra: str = "") -> CageSpec:
    (tmp_path / "ws").mkdir(exist_ok=True)
    path = tmp_path / "cage.yaml"
    path.write_text(
        "name: vmcage\ncontainer:\n  image: localhost/a:1\n"
        f"  volumes: ['{tmp_path}/ws:/work', '{tmp_path}/ws:/snap:ro']\n"
        f"domains: {{allow: [example.com]}}\nisolation: firecracker\n{extra}"
    )
    state = tmp_path / "state"
    return CageSpec(load_config(path), TOPOLOGY, Images("p", "d", "a"), HostPaths.under(state))


def _qemu_spec(tmp_path: Path, shares: tuple[Share, ...] = ()) -> list[str]:
    machine = replace(
        spec(tmp_path, kind="serial", network=StreamNetwork(tmp_path / "p.sock")), shares=shares
    )
    return qemu_argv(machine, "qemu-system-x86_64", "tcg")


def test_a_writable_bind_mount_is_a_share_the_agent_binds_at_its_target(tmp_path: Path) -> None:
    cage = _spec(tmp_path)
    state = tmp_path / "state"
    dns, proxy, agent = guest_roles(build_units(cage), TOPOLOGY, state, ImageFacts(), shares=True)
    host = str(tmp_path / "ws")
    assert agent.shares == (host,)  # the `:ro` one is copied onto the agent's root instead
    binds = {target: (source, ro) for source, target, ro in agent.sandbox["binds"]}
    assert binds["/work"] == (guest_share_point(host), False)
    assert "/snap" not in binds
    assert guest_share_point(host).startswith(f"{GUEST_SHARES}/")
    for sidecar in (dns, proxy):
        assert sidecar.shares == () and GUEST_SHARES in sidecar.sandbox["mask"]


def test_without_a_shared_filesystem_device_a_writable_bind_is_refused(tmp_path: Path) -> None:
    cage = _spec(tmp_path)
    with pytest.raises(VmmError, match="Firecracker has no shared-filesystem") as refused:
        guest_roles(build_units(cage), TOPOLOGY, tmp_path / "state", ImageFacts())
    assert "hypervisor: qemu" in (refused.value.hint or "")
    firecracker = replace(spec(tmp_path), shares=(Share("ws-a", tmp_path / "fs.sock"),))
    with pytest.raises(VmmError, match="shared-filesystem") as refused:
        api_calls(firecracker)
    assert "named_volumes" in (refused.value.hint or "")


def test_the_config_refuses_a_writable_bind_only_where_it_cannot_work(tmp_path: Path) -> None:
    _spec(tmp_path)  # auto: QEMU takes it; Firecracker, chosen at create, refuses there
    _spec(tmp_path, "firecracker: {hypervisor: qemu}\n")
    with pytest.raises(ConfigError, match=r"Firecracker does not have.*hypervisor: qemu"):
        _spec(tmp_path, "firecracker: {hypervisor: firecracker}\n")
    (tmp_path / "file.txt").write_text("x")
    path = tmp_path / "file.yaml"
    path.write_text(
        "name: vmcage\ncontainer:\n  image: localhost/a:1\n"
        f"  volumes: ['{tmp_path}/file.txt:/f.txt']\n"
        "domains: {allow: [example.com]}\nisolation: firecracker\n"
    )
    with pytest.raises(ConfigError, match="directories only"):
        load_config(path)


def test_qemu_shares_guest_memory_with_one_vhost_user_fs_device_per_share(tmp_path: Path) -> None:
    plain = _qemu_spec(tmp_path)
    assert "memory-backend" not in " ".join(plain) and "vhost-user-fs-device" not in plain
    shares = (Share("ws-a", tmp_path / "a.sock"), Share("ws-b", tmp_path / "b.sock"))
    argv = _qemu_spec(tmp_path, shares)
    assert argv[argv.index("-M") + 1].endswith(",memory-backend=mem")
    objects = [argv[i + 1] for i, word in enumerate(argv) if word == "-object"]
    assert objects == ["memory-backend-memfd,id=mem,size=512M,share=on"]
    assert argv[argv.index("-m") + 1] == "512M"  # the backend's size must equal it
    chardevs = [argv[i + 1] for i, word in enumerate(argv) if word == "-chardev"]
    assert f"socket,id=fs0,path={tmp_path / 'a.sock'}" in chardevs
    assert f"socket,id=fs1,path={tmp_path / 'b.sock'}" in chardevs
    devices = [argv[i + 1] for i, word in enumerate(argv) if word == "-device"]
    assert "vhost-user-fs-device,chardev=fs0,tag=ws-a" in devices
    assert "vhost-user-fs-device,chardev=fs1,tag=ws-b" in devices
    with pytest.raises(VmmError, match="comma"):
        _qemu_spec(tmp_path, (Share("ws-a", tmp_path / "a,b.sock"),))


@pytest.mark.parametrize("tag", ["", "WS", "ws,x", "ws a", "x" * 37])
def test_a_share_tag_is_a_plain_short_name(tmp_path: Path, tag: str) -> None:
    with pytest.raises(VmmError, match="virtiofs tag"):
        Share(tag, tmp_path / "s.sock")


def test_share_tags_are_stable_short_and_distinct() -> None:
    assert share_tag("/srv/ws") == share_tag("/srv/ws") != share_tag("/srv/ws2")
    Share(share_tag("/a/very/long/path/" * 10), Path("/s"))  # valid whatever the path


def test_virtiofsd_runs_unprivileged_and_shows_its_files_as_the_agents(tmp_path: Path) -> None:
    argv = virtiofsd_argv("/srv/ws", tmp_path / "fs.sock", (1000, 1001), (10000, 10000))
    # Its own loader and libraries: trixie's glibc, not the image's.
    assert argv[:4] == [
        f"{VIRTIOFSD_DIR}/ld-linux-x86-64.so.2",
        "--library-path",
        VIRTIOFSD_DIR,
        f"{VIRTIOFSD_DIR}/virtiofsd",
    ]
    words = " ".join(argv)
    assert "--shared-dir /srv/ws" in words and f"--socket-path {tmp_path / 'fs.sock'}" in words
    assert "--sandbox none" in words
    assert "--translate-uid map:1000:10000:1" in words
    assert "--translate-gid map:1001:10000:1" in words
    hook = image_hook(tmp_path / "staged dir")
    assert hook.startswith("--customize-hook=") and f"'{tmp_path}/staged dir'/." in hook


def test_the_vm_container_starts_one_daemon_per_share_from_the_plan(tmp_path: Path) -> None:
    agent = GuestRole("agent", ("/a",), {}, 1000, 1000, {}, shares=("/srv/ws",))
    plan = VmPlan(
        name="vmcage", vcpus=1, mem_mib=512, qemu="q", accel="tcg", kernel=tmp_path / "k",
        initrd=tmp_path / "i", root=tmp_path / "r", agent_drive=tmp_path / "a",
        address="10.0.2.2/24", gateway="10.0.2.1", topology=TOPOLOGY,
        state_dir=tmp_path, run_dir=tmp_path / "vm", resolvers=(), roles=(agent,),
    )  # fmt: skip
    assert VmPlan.from_json(plan.as_json()).roles[0].shares == ("/srv/ws",)
    secrets = Drive("secrets", tmp_path / "s", True, "agentcage-creds")
    machine = machine_spec(plan, StreamNetwork(tmp_path / "p"), secrets, tmp_path)
    tag = share_tag("/srv/ws")
    assert machine.shares == (Share(tag, tmp_path / f"{tag}.sock"),)


def test_the_vm_container_mounts_each_share_chowned_only_when_asked(tmp_path: Path) -> None:
    cage = _spec(tmp_path)
    shares = (("/srv/ws", False), ("/srv/own", True))
    units = vm_units(cage, "img", "/st", "/st/vm", 1024, None, shares=shares)
    unit = units.files["agentcage-vmcage-vm.container"]
    volumes = unit.get("Container", "Volume")
    assert "/srv/ws:/srv/ws:rw" in volumes and "/srv/own:/srv/own:rw,U" in volumes


def test_a_share_the_vm_containers_user_cannot_write_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir(mode=0o755)
    if os.geteuid() == 0:
        os.chown(workspace, 0, 0)
        with pytest.raises(VmmError, match="uid 10000") as refused:
            check_share_owner(str(workspace), chowned=False, rootless=False)
        assert "chown -R 10000:10000" in (refused.value.hint or "")
        check_share_owner(str(workspace), chowned=True, rootless=False)  # Podman's `:U`
        os.chown(workspace, 10000, 10000)
        check_share_owner(str(workspace), chowned=False, rootless=False)
        workspace.chmod(0o577)  # others may write, but the owner's bits decide for its owner
        with pytest.raises(VmmError, match="could not write"):
            check_share_owner(str(workspace), chowned=False, rootless=False)
        os.chown(workspace, 0, 10000)
        workspace.chmod(0o775)  # through its group
        check_share_owner(str(workspace), chowned=False, rootless=False)
    workspace.chmod(0o555)
    if os.geteuid() != 0:
        with pytest.raises(VmmError, match="could not write"):
            check_share_owner(str(workspace), chowned=False, rootless=True)


def test_the_agents_root_has_only_a_mount_point_where_a_share_is_bound(tmp_path: Path) -> None:
    host = tmp_path / "ws"
    host.mkdir()
    (host / "secret-of-the-host.txt").write_text("live, not copied")
    tree = tmp_path / "tree"
    tree.mkdir()
    unit = UnitFile()
    unit.add("Container", "Volume", f"{host}:/work")
    unit.add("Container", "Volume", f"{host}:/snap:ro")
    agent_root_image(tree, unit, tmp_path / "state", tmp_path / "agent.ext4")
    assert (tree / "work").is_dir() and not any((tree / "work").iterdir())
    assert (tree / "snap" / "secret-of-the-host.txt").is_file()  # `:ro`: a snapshot


def test_the_daemons_recorded_versions_key_the_vm_image(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(image_inputs, "source_root", lambda: tmp_path)
    lock = tmp_path / "images" / "debian.lock"
    lock.parent.mkdir()
    lines = [
        "bookworm virtiofsd 1:7.2+dfsg-7",  # QEMU's, another suite
        "trixie podman 5.4.2+ds1-2",
        "trixie virtiofsd 1.13.2-1+deb13u1",
    ]
    lock.write_text("\n".join(lines) + "\n")
    key = virtiofs.virtiofsd_key()
    assert "virtiofsd 1.13.2-1+deb13u1" in key
    assert "podman" not in key and "bookworm" not in key
    lines[2] = "trixie virtiofsd 1.13.2-1+deb13u2"  # `deps check --update` recorded a fix
    lock.write_text("\n".join(lines) + "\n")
    assert virtiofs.virtiofsd_key() != key
