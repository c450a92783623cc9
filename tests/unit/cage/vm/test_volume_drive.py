"""Named volumes of a microVM cage: a writable image each, attached as a virtio-blk drive."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from agentcage.cage.unit import UnitFile
from agentcage.cage.vm.agent_root import agent_root_image
from agentcage.cage.vm.firecracker_api import api_calls
from agentcage.cage.vm.guest_roles import RUN_ROOT, GuestRole
from agentcage.cage.vm.machine import Drive, StreamNetwork
from agentcage.cage.vm.qemu_argv import qemu_argv
from agentcage.cage.vm.vm_plan import VmPlan
from agentcage.cage.vm.vm_run import machine_spec
from agentcage.cage.vm.volume_drive import (
    GUEST_VOLUMES,
    VOLUME_SIZE_MIB,
    ensure_volume,
    volume_drive,
    volume_label,
    volume_path,
)
from agentcage.errors import VmmError
from tests.unit.cage.vm.specs import spec


def _debugfs(image: Path, request: str) -> str:
    done = subprocess.run(
        ["debugfs", "-R", request, str(image)], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_a_new_volume_is_a_sparse_ext4_image_the_agent_owns(tmp_path: Path) -> None:
    assert ensure_volume(tmp_path, "data", 1000, 1001)
    image = volume_path(tmp_path, "data")
    assert image == tmp_path / "volumes" / "data.ext4"
    assert image.stat().st_size == VOLUME_SIZE_MIB << 20
    assert image.stat().st_blocks * 512 < 16 << 20  # sparse: the host holds a few MiB
    assert image.stat().st_mode & 0o777 == 0o600
    assert not list(image.parent.glob("*.new"))
    root = _debugfs(image, "stat /")
    assert "User:  1000   Group:  1001" in root
    label = subprocess.run(
        ["e2label", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert label == volume_label("data")
    assert "Reserved block count:     0" in _debugfs(image, "stats")


def test_an_existing_volume_is_kept_as_it_is(tmp_path: Path) -> None:
    # `cage update`, `start` and every boot attach the image the agent wrote to.
    ensure_volume(tmp_path, "data", 1000, 1000)
    image = volume_path(tmp_path, "data")
    with image.open("r+b") as handle:
        handle.seek(1 << 30)
        handle.write(b"written by the agent")
    assert not ensure_volume(tmp_path, "data", 2000, 2000)
    with image.open("rb") as handle:
        handle.seek(1 << 30)
        assert handle.read(20) == b"written by the agent"


def test_labels_fit_ext4_and_differ_per_name() -> None:
    labels = {volume_label(name) for name in ("data", "Data", "cache.v2", "a" * 64)}
    assert len(labels) == 4
    assert all(len(label.encode()) == 16 for label in labels)
    assert volume_label("data") == volume_label("data")  # found again on every boot
    assert GUEST_VOLUMES.startswith(f"{RUN_ROOT}/")


def test_only_a_volume_drive_may_be_writable(tmp_path: Path) -> None:
    machine = spec(tmp_path)
    volume = volume_drive(tmp_path, "data")
    assert not volume.read_only
    writable = replace(machine, volumes=(volume,))
    assert writable.drives[-1] == volume
    with pytest.raises(VmmError, match="must be read-only"):
        replace(machine, extra_drives=(Drive("agent", tmp_path, False, "agentroot"),))


def test_both_monitors_attach_a_volume_writable(tmp_path: Path) -> None:
    volume = volume_drive(tmp_path, "data")
    machine = replace(spec(tmp_path), volumes=(volume,))
    body = {c.path: c.body for c in api_calls(machine)}[f"/drives/{volume.drive_id}"]
    assert body == {
        "drive_id": volume.drive_id,
        "path_on_host": str(volume.path),
        "is_root_device": False,
        "is_read_only": False,
    }
    serial = replace(
        spec(tmp_path, kind="serial", network=StreamNetwork(tmp_path / "p.sock")),
        volumes=(volume,),
    )
    argv = qemu_argv(serial, "qemu-system-x86_64", "tcg")
    drives = [argv[i + 1] for i, word in enumerate(argv) if word == "-drive"]
    assert f"id={volume.drive_id},file={volume.path},format=raw,if=none" in drives
    assert [d for d in drives if "readonly=on" in d] == [
        d for d in drives if volume.drive_id not in d
    ]
    assert f"virtio-blk-device,drive={volume.drive_id}" in argv


def test_the_vm_container_attaches_the_agents_volumes_from_the_plan(tmp_path: Path) -> None:
    agent = GuestRole("agent", ("/a",), {}, 1000, 1000, {}, volumes=("data", "cache"))
    plan = VmPlan(
        name="vmcage", vcpus=1, mem_mib=512, qemu="q", accel="tcg", kernel=tmp_path / "k",
        initrd=tmp_path / "i", root=tmp_path / "r", agent_drive=tmp_path / "a",
        address="10.0.2.2/24", gateway="10.0.2.1", topology=None,  # type: ignore[arg-type]
        state_dir=tmp_path, run_dir=tmp_path / "vm", resolvers=(), roles=(agent,),
    )  # fmt: skip
    secrets = Drive("secrets", tmp_path / "s", True, "agentcage-creds")
    machine = machine_spec(plan, StreamNetwork(tmp_path / "p"), secrets, tmp_path)
    assert machine.volumes == (
        volume_drive(plan.run_dir, "data"),
        volume_drive(plan.run_dir, "cache"),
    )
    assert all(d.read_only for d in machine.drives if d not in machine.volumes)


def test_the_agents_root_has_an_empty_directory_where_a_volume_is_bound(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "data").mkdir(parents=True)
    (tree / "data" / "from-image").write_text("x")
    unit = UnitFile()
    unit.add("Container", "Volume", "agentcage-c-data.volume:/data")
    unit.add("Container", "Volume", "agentcage-c-logs.volume:/var/log/app:ro")
    agent_root_image(tree, unit, tmp_path / "state", tmp_path / "agent.ext4")
    assert (tree / "var/log/app").is_dir()
    assert (tree / "data" / "from-image").exists()  # hidden by the mount, not copied over
    listing = _debugfs(tmp_path / "agent.ext4", "ls -l /var/log")
    assert " app" in listing or "app\n" in listing
