"""MicroVM boot and memory under QEMU: boot-to-agent-answer time and the monitor's host memory.

Run: .venv/bin/python bench/microvm/run.py [--boots N] [--mem-mib M] [--accel tcg|kvm]
     [--proxy | --cage]
Builds (or reuses from the cache) the guest image, then boots it N times one after the
other: each boot is timed from starting qemu-system-x86_64 to the guest agent's first
answer over virtio-serial (with --proxy, also to `agentcage proxy run` listening in the
guest; with --cage, to a whole cage ready: the DNS sidecar and the proxy listening and
the agent started in its namespace, tests/support/microvm_cage.py), the QEMU process's
RSS and PSS (/proc/PID/smaps_rollup) are read while the guest idles after that, and the
clean shutdown is timed. Nothing here is judged: the numbers are printed, with the
machine's facts beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.microvm import (  # noqa: E402
    TCG,
    network_end,
    secrets_drive,
    small_machine,
    start_guest_proxy,
)
from tests.support.microvm_cage import TOPOLOGY, prepare_cage  # noqa: E402

from agentcage.cage.vm.guest_cage import start_cage  # noqa: E402
from agentcage.cage.vm.guest_image import build_guest  # noqa: E402
from agentcage.cage.vm.hypervisor import Hypervisor  # noqa: E402
from agentcage.cage.vm.vm_process import QemuMachine  # noqa: E402


def memory_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        if key in ("Rss", "Pss"):
            found[key] = int(value.split()[0])
    return found


def boot_once(
    hypervisor: Hypervisor, mem_mib: int, settle: float, proxy: bool, cage: bool
) -> dict[str, float]:
    guest = build_guest()
    workdir = Path(tempfile.mkdtemp(prefix="vmbench-", dir="/tmp"))
    listener = network_end(workdir / "net.sock")
    try:
        drive = secrets_drive(workdir, {"ANTHROPIC_API_KEY": "bench"})
        made = prepare_cage(workdir, "sleep 3600\n") if cage else None
        drives = (made.agent_drive,) if made else ()
        spec = small_machine(
            guest, workdir, workdir / "net.sock", drive, (), mem_mib, drives=drives
        )
        vm = QemuMachine(spec, hypervisor)
        began = time.monotonic()
        vm.start()
        vm.wait_ready(timeout=300)
        ready = time.monotonic() - began
        if proxy:
            start_guest_proxy(vm, time.monotonic() + 300)
        if made:
            deadline = time.monotonic() + 600
            start_cage(vm.ask, made.roles, TOPOLOGY, made.state_dir, deadline, made.resolvers)
        healthy = time.monotonic() - began
        time.sleep(settle)
        assert vm.process is not None
        memory = memory_kib(vm.process.pid)
        report = vm.stop(timeout=30)
        if not report.clean:
            raise SystemExit("the guest did not shut down cleanly")
        return {
            "boot_s": ready,
            "healthy_s": healthy,
            "rss_mib": memory["Rss"] / 1024,
            "pss_mib": memory["Pss"] / 1024,
            "stop_s": report.seconds,
        }
    finally:
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--mem-mib", type=int, default=256)
    parser.add_argument("--accel", choices=("tcg", "kvm"), default="tcg")
    parser.add_argument(
        "--proxy", action="store_true", help="also start `agentcage proxy run` in the guest"
    )
    parser.add_argument(
        "--cage", action="store_true", help="start a whole cage (DNS, proxy, agent) in the guest"
    )
    parser.add_argument(
        "--settle", type=float, default=1.0, help="idle seconds before reading memory"
    )
    args = parser.parse_args()
    hypervisor = TCG if args.accel == "tcg" else Hypervisor("qemu", TCG.binary, "kvm", "asked")
    started = time.monotonic()
    build_guest()
    print(f"guest image ready in {time.monotonic() - started:.1f} s (0 when cached)")
    print(f"host: {os.cpu_count()} CPUs, accel {args.accel}, guest {args.mem_mib} MiB, 1 vCPU")
    rows = [
        boot_once(hypervisor, args.mem_mib, args.settle, args.proxy, args.cage)
        for _ in range(args.boots)
    ]
    healthy = args.proxy or args.cage
    print(
        f"{'boot':>4} {'boot-to-agent s':>16} {'to ready s':>11} {'QEMU RSS MiB':>13} "
        f"{'QEMU PSS MiB':>13} {'stop s':>7}"
    )
    for n, row in enumerate(rows, 1):
        print(
            f"{n:>4} {row['boot_s']:>16.2f} "
            f"{row['healthy_s'] if healthy else float('nan'):>11.2f} {row['rss_mib']:>13.1f} "
            f"{row['pss_mib']:>13.1f} {row['stop_s']:>7.2f}"
        )
    boot = [row["boot_s"] for row in rows]
    median = statistics.median(boot)
    print(f"median boot-to-agent {median:.2f} s; min {min(boot):.2f}, max {max(boot):.2f}")


if __name__ == "__main__":
    main()
