"""Real microVMs under QEMU (TCG here): the guest image, and a machine per test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agentcage.cage.vm.guest_image import GuestImage, build_guest
from agentcage.cage.vm.vm_process import QemuMachine
from tests.support.microvm import TCG, network_end, secrets_drive, small_machine


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


@pytest.fixture
def machine(guest: GuestImage, workdir: Path) -> Iterator[MachineFactory]:
    started: list[QemuMachine] = []
    listener = network_end(workdir / "net.sock")

    def make(secrets: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> QemuMachine:
        drive = secrets_drive(workdir, secrets) if secrets is not None else None
        spec = small_machine(guest, workdir, workdir / "net.sock", drive, extra)
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
