from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage.vm.firecracker_api import api_calls, launch_argv
from agentcage.cage.vm.machine import ROOT_LABEL, Drive, Nic, StreamNetwork
from agentcage.cage.vm.qemu_argv import qemu_argv
from agentcage.errors import VmmError
from tests.unit.cage.vm.specs import spec


def test_firecracker_calls_follow_the_documented_bodies(tmp_path: Path) -> None:
    calls = [(c.method, c.path, c.body) for c in api_calls(spec(tmp_path))]
    assert calls[0] == (
        "PUT",
        "/machine-config",
        {"vcpu_count": 2, "mem_size_mib": 512, "smt": False},
    )
    boot = calls[1]
    assert boot[:2] == ("PUT", "/boot-source")
    assert boot[2]["kernel_image_path"] == str(tmp_path / "vmlinuz")
    assert boot[2]["initrd_path"] == str(tmp_path / "initrd.img")
    assert "reboot=k" in boot[2]["boot_args"].split()
    assert calls[2] == (
        "PUT",
        "/drives/root",
        {
            "drive_id": "root",
            "path_on_host": str(tmp_path / "root.ext4"),
            "is_root_device": False,
            "is_read_only": True,
        },
    )
    assert calls[3][1] == "/drives/secrets" and calls[3][2]["is_read_only"] is True
    assert calls[4] == (
        "PUT",
        "/network-interfaces/eth0",
        {"iface_id": "eth0", "guest_mac": "02:ac:00:00:00:01", "host_dev_name": "tap-cage-a"},
    )
    assert calls[5] == ("PUT", "/vsock", {"guest_cid": 3, "uds_path": str(tmp_path / "agent.sock")})
    assert launch_argv("/usr/bin/firecracker", tmp_path / "api.sock", spec(tmp_path)) == [
        "/usr/bin/firecracker",
        "--api-sock",
        str(tmp_path / "api.sock"),
        "--id",
        "cage-a",
    ]


def test_firecracker_refuses_what_it_cannot_express(tmp_path: Path) -> None:
    with pytest.raises(VmmError, match="virtio-serial"):
        api_calls(spec(tmp_path, kind="serial"))
    with pytest.raises(VmmError, match="TAP device only"):
        api_calls(spec(tmp_path, network=StreamNetwork(tmp_path / "passt.sock")))


def test_both_monitors_pass_the_same_boot_contract(tmp_path: Path) -> None:
    machine = spec(tmp_path, kind="serial", network=StreamNetwork(tmp_path / "passt.sock"))
    argv = qemu_argv(machine, "qemu-system-x86_64", "tcg")
    cmdline = argv[argv.index("-append") + 1].split()
    assert f"agentcage.root={ROOT_LABEL}" in cmdline
    assert "agentcage.net=02:ac:00:00:00:01,10.9.0.2/30" in cmdline
    assert "agentcage.channel=serial" in cmdline
    assert {"panic=-1", "reboot=t", "console=ttyS0"} <= set(cmdline)
    fc = api_calls(spec(tmp_path))[1].body["boot_args"].split()
    assert [w for w in fc if w.startswith("agentcage.")] == [
        "agentcage.root=agentcage-root",
        "agentcage.secrets=agentcage-creds",
        "agentcage.net=02:ac:00:00:00:01,10.9.0.2/30",
        "agentcage.channel=vsock",
    ]


def test_qemu_argv_is_a_microvm_with_virtio_mmio_devices(tmp_path: Path) -> None:
    machine = spec(tmp_path, kind="serial", network=StreamNetwork(tmp_path / "passt.sock"))
    argv = qemu_argv(machine, "qemu-system-x86_64", "tcg")
    assert argv[argv.index("-M") + 1].startswith("microvm,")
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert argv[argv.index("-cpu") + 1] == "max"
    assert "-no-reboot" in argv and "-nodefaults" in argv
    assert f"id=root,file={tmp_path / 'root.ext4'},format=raw,if=none,readonly=on" in argv
    assert "virtio-blk-device,drive=secrets" in argv
    assert f"stream,id=eth0,server=off,addr.type=unix,addr.path={tmp_path / 'passt.sock'}" in argv
    assert "virtio-net-device,netdev=eth0,mac=02:ac:00:00:00:01" in argv
    assert "virtserialport,chardev=agent,name=org.agentcage.agent" in argv
    assert not any("virtio-pci" in word or "-pci" in word for word in argv)
    kvm = qemu_argv(spec(tmp_path), "qemu-system-x86_64", "kvm")
    assert kvm[kvm.index("-cpu") + 1] == "host"
    assert "vhost-vsock-device,guest-cid=3" in kvm


def test_a_comma_in_a_path_cannot_add_a_qemu_option(tmp_path: Path) -> None:
    evil = tmp_path / "x,readonly=off"
    machine = spec(tmp_path, kind="serial")
    machine = type(machine)(**{**machine.__dict__, "root": Drive("root", evil, True, ROOT_LABEL)})
    with pytest.raises(VmmError, match="comma"):
        qemu_argv(machine, "qemu-system-x86_64", "tcg")


def test_the_spec_refuses_a_writable_root_or_secrets_drive_and_odd_names(tmp_path: Path) -> None:
    machine = spec(tmp_path)
    with pytest.raises(VmmError, match="root drive"):
        type(machine)(**{**machine.__dict__, "root": Drive("root", tmp_path, False, ROOT_LABEL)})
    with pytest.raises(VmmError, match="secrets drive"):
        type(machine)(**{**machine.__dict__, "secrets": Drive("s", tmp_path, False, "x")})
    with pytest.raises(VmmError, match="drive id"):
        Drive("../boot-source", tmp_path, True, ROOT_LABEL)
    with pytest.raises(VmmError, match="MAC"):
        Nic("eth0", "02:AC:00:00:00:01", StreamNetwork(tmp_path), "10.0.0.2/24")
    with pytest.raises(VmmError, match="repeat"):
        type(machine)(**{**machine.__dict__, "secrets": Drive("root", tmp_path, True, "x")})
