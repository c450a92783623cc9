"""The Firecracker backend against a fake Firecracker API on a real unix socket."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agentcage.cage.vm.firecracker_api import CTRL_ALT_DEL, START, ApiCall, FirecrackerClient
from agentcage.cage.vm.volume_drive import volume_drive
from agentcage.errors import VmmError
from tests.support.fake_firecracker import FakeFirecracker
from tests.unit.cage.vm.specs import spec


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("initrd.img", "root.ext4", "secrets.ext4"):
        (tmp_path / name).write_bytes(b"\0" * 512)
    (tmp_path / "vmlinuz").write_bytes(b"\x7fELF" + b"\0" * 508)  # as a vmlinux starts
    return tmp_path


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeFirecracker]:
    # AF_UNIX paths are short (108 bytes); pytest's tmp_path may not be.
    path = Path(f"/tmp/fc-{tmp_path.name[-20:]}.sock")
    path.unlink(missing_ok=True)
    with FakeFirecracker(path) as fc:
        yield fc


def raw_put(path: Path, url: str, body: object) -> tuple[int, bytes]:
    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(path))

    conn = Conn("localhost", timeout=5)
    conn.request("PUT", url, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def test_boot_then_ctrl_alt_del(files: Path, fake: FakeFirecracker) -> None:
    client = FirecrackerClient(fake.socket_path)
    client.boot(spec(files))
    client.request_shutdown()
    state = fake.state
    assert [(m, p) for m, p, _ in state.calls] == [
        ("PUT", "/machine-config"),
        ("PUT", "/boot-source"),
        ("PUT", "/drives/root"),
        ("PUT", "/drives/secrets"),
        ("PUT", "/network-interfaces/eth0"),
        ("PUT", "/vsock"),
        ("PUT", "/actions"),
        ("PUT", "/actions"),
    ]
    assert state.started and state.ctrl_alt_del == 1
    assert state.machine == {"vcpu_count": 2, "mem_size_mib": 512, "smt": False}
    assert state.drives["secrets"]["is_read_only"] is True
    assert state.vsock == {"guest_cid": 3, "uds_path": str(files / "agent.sock")}


def test_a_named_volume_is_a_writable_drive_firecracker_accepts(
    files: Path, fake: FakeFirecracker
) -> None:
    volume = volume_drive(files, "data")
    volume.path.parent.mkdir()
    volume.path.write_bytes(b"\0" * 512)
    FirecrackerClient(fake.socket_path).boot(replace(spec(files), volumes=(volume,)))
    assert fake.state.started
    assert fake.state.drives[volume.drive_id] == {
        "drive_id": volume.drive_id,
        "path_on_host": str(volume.path),
        "is_root_device": False,
        "is_read_only": False,
    }
    assert all(fake.state.drives[d]["is_read_only"] for d in ("root", "secrets"))


def test_a_fault_reaches_the_user_with_firecrackers_message(
    files: Path, fake: FakeFirecracker
) -> None:
    # No initrd file: Firecracker refuses the boot source, and nothing boots.
    (files / "initrd.img").unlink()
    with pytest.raises(VmmError, match=r"refused PUT /boot-source \(400\).*initrd file cannot"):
        FirecrackerClient(fake.socket_path).boot(spec(files))
    assert not fake.state.started


def test_a_bzimage_is_refused_before_any_call(files: Path, fake: FakeFirecracker) -> None:
    bzimage = bytearray(0x300)
    bzimage[0x202:0x206] = b"HdrS"
    (files / "vmlinuz").write_bytes(bytes(bzimage))
    with pytest.raises(VmmError, match="compressed bzImage") as caught:
        FirecrackerClient(fake.socket_path).boot(spec(files))
    assert caught.value.hint and "vmlinux" in caught.value.hint
    assert fake.state.calls == []


def test_order_is_enforced(files: Path, fake: FakeFirecracker) -> None:
    client = FirecrackerClient(fake.socket_path)
    with pytest.raises(VmmError, match="before starting"):
        client.request_shutdown()
    with pytest.raises(VmmError, match="without kernel configuration"):
        client.send(START)
    client.boot(spec(files))
    with pytest.raises(VmmError, match="after starting"):
        client.send(ApiCall("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}))
    with pytest.raises(VmmError, match="after starting"):
        client.send(START)
    client.send(CTRL_ALT_DEL)


def test_the_fake_refuses_what_firecracker_refuses(files: Path, fake: FakeFirecracker) -> None:
    """The fake is strict, or a wrong body from the backend would pass unseen."""
    sock = fake.socket_path
    drive = {"drive_id": "root", "path_on_host": str(files / "root.ext4"), "is_root_device": True}
    refusals = [
        ("/drives/other", drive, "does not match"),
        ("/drives/root", {**drive, "read_only": True}, "unknown field `read_only`"),
        ("/drives/root", {"drive_id": "root"}, "missing field `is_root_device`"),
        ("/machine-config", {"vcpu_count": "2", "mem_size_mib": 128}, "invalid type"),
        ("/machine-config", {"vcpu_count": True, "mem_size_mib": 128}, "invalid type"),
        ("/machine-config", {"vcpu_count": 33, "mem_size_mib": 128}, "vCPU number"),
        ("/vsock", {"guest_cid": 2, "uds_path": "/x"}, "CID"),
        ("/network-interfaces/eth0", {"iface_id": "eth0"}, "missing field `host_dev_name`"),
        ("/actions", {"action_type": "Pause"}, "unknown variant"),
        ("/mmds/x", {}, "Invalid request"),
    ]
    for url, body, message in refusals:
        status, payload = raw_put(sock, url, body)
        assert status == 400, url
        assert message in json.loads(payload)["fault_message"], url
    assert raw_put(sock, "/drives/root", drive)[0] == 204
    second = {**drive, "drive_id": "two"}
    assert (
        "root block device" in json.loads(raw_put(sock, "/drives/two", second)[1])["fault_message"]
    )


def test_no_socket_is_a_vmm_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(VmmError) as caught:
        FirecrackerClient(tmp_path / "absent.sock").request_shutdown()
    assert caught.value.hint == "is the firecracker process running?"
