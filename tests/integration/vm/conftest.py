"""Real microVMs under QEMU (TCG here): the guest image, and a machine per test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentcage.cage.vm.guest_image import GuestImage, build_guest
from agentcage.cage.vm.machine import Drive
from agentcage.cage.vm.vm_process import QemuMachine
from tests.support import vm_uplink
from tests.support.microvm import TCG, network_end, secrets_drive, small_machine
from tests.support.netns import isolated

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def guest() -> GuestImage:
    # Built once per cache key (~2 min: kernel and busybox .debs through the host's apt,
    # mmdebstrap, mkfs.ext4), then reused from the cache by every run.
    return build_guest()


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Unix socket paths must stay under 108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="vm-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


MachineFactory = Callable[..., QemuMachine]


@dataclass(frozen=True)
class Uplink:
    socket: Path
    port: int
    record: Path  # the requests the fake internet behind the gateway received


@pytest.fixture
def uplink(workdir: Path) -> Iterator[Uplink]:
    """passt in a namespace of this test's own, serving a banner on its gateway address."""
    path = workdir / "passt.sock"
    with socket.socket() as probe:  # a free port number; the server binds it in the namespace
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    record = workdir / "requests.txt"
    argv = isolated(
        [sys.executable, "-m", "tests.support.vm_uplink", str(path), str(port), str(record)]
    )
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline() == b"ready\n"
    yield Uplink(path, port, record)
    process.stdin.close()
    process.wait(timeout=10)


@pytest.fixture
def machine(guest: GuestImage, workdir: Path) -> Iterator[MachineFactory]:
    started: list[QemuMachine] = []
    listener = network_end(workdir / "net.sock")

    def make(
        secrets: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
        uplink: Uplink | None = None,
        mem_mib: int = 256,
        drives: tuple[Drive, ...] = (),
    ) -> QemuMachine:
        drive = secrets_drive(workdir, secrets) if secrets is not None else None
        if uplink is None:
            spec = small_machine(
                guest, workdir, workdir / "net.sock", drive, extra, mem_mib, drives=drives
            )
        else:
            address, gateway = vm_uplink.GUEST_ADDRESS, vm_uplink.GATEWAY
            spec = small_machine(
                guest, workdir, uplink.socket, drive, extra, mem_mib, address, gateway, drives
            )
        vm = QemuMachine(spec, TCG)
        vm.start()
        started.append(vm)
        return vm

    yield make
    for vm in started:
        if vm.process is not None and vm.process.poll() is None:
            vm.process.kill()
            vm.process.wait()
    listener.close()
