from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import pytest

from agentcage.cage.vm import guest_agent
from agentcage.cage.vm.debian_parts import KERNEL, DebianPart, check_pin
from agentcage.cage.vm.initramfs import Cpio, build_initramfs, modinfo, module_order
from agentcage.errors import VmmError


def read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, data), parsed independently of the writer."""
    entries, at = {}, 0
    while True:
        assert data[at : at + 6] == b"070701"
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_at = at + 110
        name = data[name_at : name_at + namesize - 1].decode()
        body_at = name_at + namesize + (-(name_at + namesize) % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, data[body_at : body_at + size])
        at = body_at + size + (-(body_at + size) % 4)


def fake_module(name: str, depends: str) -> bytes:
    """A minimal ELF64 with a section-name table and a .modinfo section."""
    names = b"\0.shstrtab\0.modinfo\0"
    info = f"license=GPL\0depends={depends}\0name={name}\0".encode()
    body_at = 64
    shoff = body_at + len(names) + len(info)
    header = bytearray(64)
    header[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 1)
    null = bytes(64)
    shstr = struct.pack("<IIQQQQ", 1, 3, 0, 0, body_at, len(names)) + bytes(24)
    mod = struct.pack("<IIQQQQ", 11, 1, 0, 0, body_at + len(names), len(info)) + bytes(24)
    return bytes(header) + names + info + null + shstr + mod


def test_modules_load_after_their_dependencies(tmp_path: Path) -> None:
    (tmp_path / "drivers").mkdir()
    for name, deps in {
        "virtio": "",
        "virtio_ring": "virtio",
        "virtio_blk": "virtio,virtio_ring",
    }.items():
        (tmp_path / "drivers" / f"{name}.ko").write_bytes(fake_module(name, deps))
    assert modinfo((tmp_path / "drivers" / "virtio_blk.ko").read_bytes())["depends"] == (
        "virtio,virtio_ring"
    )
    order = [p.name for p in module_order(tmp_path, ("virtio_blk", "virtio"))]
    assert order == ["virtio.ko", "virtio_ring.ko", "virtio_blk.ko"]
    with pytest.raises(VmmError, match="virtio_net is not"):
        module_order(tmp_path, ("virtio_net",))
    with pytest.raises(VmmError, match="ELF64"):
        modinfo(b"MZ not a module")


def test_the_initramfs_holds_busybox_modules_and_an_init(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    for name, deps in {
        "virtio": "",
        "virtio_ring": "virtio",
        "virtio_mmio": "virtio,virtio_ring",
        "virtio_blk": "virtio,virtio_ring",
        "failover": "",
        "net_failover": "failover",
        "virtio_net": "net_failover,virtio,virtio_ring",
        "virtio_console": "virtio,virtio_ring",
        "vsock": "",
        "vmw_vsock_virtio_transport_common": "vsock",
        "vmw_vsock_virtio_transport": "vmw_vsock_virtio_transport_common,vsock,virtio",
        "veth": "",
        "nfnetlink": "",
        "nf_tables": "nfnetlink",
        "nf_conntrack": "",
        "nf_nat": "nf_conntrack",
        "nft_chain_nat": "nf_tables,nf_nat",
        "nft_nat": "nf_tables,nf_nat",
        "nft_redir": "nf_tables,nf_nat",
        "nft_ct": "nf_tables,nf_conntrack",
        "fuse": "",
        "virtiofs": "fuse,virtio,virtio_ring",
    }.items():
        (modules / f"{name}.ko").write_bytes(fake_module(name, deps))
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF busybox")
    archive = build_initramfs(busybox, modules)
    assert archive == build_initramfs(busybox, modules)  # same inputs, same bytes
    entries = read_cpio(gzip.decompress(archive))
    assert entries["bin/busybox"] == (0o100755, b"\x7fELF busybox")
    assert entries["bin/switch_root"] == (0o120777, b"busybox")
    init_mode, init = entries["init"]
    assert init_mode == 0o100755 and init.startswith(b"#!/bin/sh")
    assert (
        b"exec switch_root /root /usr/bin/python3 -I -B /usr/lib/agentcage/guest_agent.py" in init
    )
    order = entries["etc/agentcage-modules"][1].decode().split()
    assert order.index("virtio.ko") < order.index("virtio_mmio.ko") < order.index("virtio_blk.ko")
    assert (
        order.index("failover.ko") < order.index("net_failover.ko") < order.index("virtio_net.ko")
    )
    assert all(f"lib/modules/{name}" in entries for name in order)
    # Default deny's redirects in the guest: nothing loads modules on demand there.
    assert order.index("nf_conntrack.ko") < order.index("nf_nat.ko") < order.index("nft_redir.ko")
    assert {"nf_tables.ko", "nft_chain_nat.ko", "nft_nat.ko", "nft_ct.ko"} <= set(order)
    # Writable bind mounts (virtiofs.py): virtiofs needs fuse first.
    assert order.index("fuse.ko") < order.index("virtiofs.ko")


def test_cpio_names_and_padding() -> None:
    archive = Cpio()
    archive.directory("a")
    archive.file("a/b", b"xyz")
    entries = read_cpio(archive.finish())
    assert entries == {"a": (0o40755, b""), "a/b": (0o100644, b"xyz")}


def test_the_guest_agent_reads_only_its_own_kernel_words() -> None:
    words = guest_agent.cmdline(
        "console=ttyS0 agentcage.root=agentcage-root agentcage.net=02:ac:00:00:00:02,10.0.2.15/24"
    )
    assert words == {
        "agentcage.root": "agentcage-root",
        "agentcage.net": "02:ac:00:00:00:02,10.0.2.15/24",
    }
    assert guest_agent.answer(b'{"op": "shutdown"}') == ({"ok": True}, True)
    assert guest_agent.answer(b"not json") == ({"ok": False, "error": "bad request"}, False)
    assert guest_agent.answer(b'{"op": "exec"}')[0]["error"] == "unknown op 'exec'"
    assert guest_agent._ip("0002000A") == "10.0.2.0"


def test_a_package_that_differs_from_its_pin_is_refused(tmp_path: Path) -> None:
    deb = tmp_path / "busybox-static_1.35_amd64.deb"
    deb.write_bytes(b"a package")
    pinned = DebianPart("busybox-static", "1.35", hashlib.sha256(b"a package").hexdigest())
    check_pin(deb, pinned)
    with pytest.raises(VmmError, match="not the pinned") as caught:
        check_pin(deb, DebianPart("busybox-static", "1.35", "0" * 64))
    assert caught.value.hint and "debian_parts.py" in caught.value.hint
    assert KERNEL.spec == f"{KERNEL.package}={KERNEL.version}"


def test_connect_needs_its_arguments() -> None:
    reply, stop = guest_agent.answer(b'{"op": "connect", "address": "10.0.2.1"}')
    assert reply == {"ok": False, "error": "connect needs address, port and timeout"}
    assert not stop


def test_the_host_can_touch_only_the_guests_run_directory() -> None:
    assert guest_agent.confined("ca/cert.pem") == guest_agent.RUN_ROOT / "ca" / "cert.pem"
    with pytest.raises(ValueError, match="not under"):
        guest_agent.confined("../secrets/agentcage/KEY")
    with pytest.raises(ValueError, match="not under"):
        guest_agent.confined("/etc/shadow")
    reply, _ = guest_agent.answer(b'{"op": "write", "path": "../../etc/passwd", "content": "x"}')
    assert reply["ok"] is False and "not under" in reply["error"]
    reply, _ = guest_agent.answer(b'{"op": "start", "name": "../x", "argv": ["sh"], "uid": 0}')
    assert reply["ok"] is False
