"""A microVM cage beside a container cage, through the real CLI: boot-to-healthy and memory.

Run (the harness is shared, so always under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.microvm.cages [--runs N] [--save FILE]

One Podman 5 harness (tests/e2e/harness.py, as bench.cages uses) and its fake internet.
Both modes get the same small cage (bench.cages' config: a `sleep infinity` agent on the
Debian agent image, github.com allowed), the microVM one with `isolation: firecracker`
(QEMU microvm, KVM where usable, else TCG; 1 vCPU, `--mem-mib` of guest memory). Each
mode is warmed up once (its images built), then, `--runs` times and alternating so both
see the same load: `cage create`, `cage verify` until it passes (create->healthy is the
sum), the harness's proportional set size (PSS of every process in it) with the cage up
minus before its create, and `cage destroy`. Prints min / median / max per figure for
each mode and the microVM's median over the container's (bench.cages' table, whose
ratio column is its last column over its first). Reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from bench.cages.run import CONFIG, Bench, Build, table
from tests.e2e.harness import INTERNET_SUBNET, REPO, Harness, Internet, running, start_internet

MODES = ("container", "microvm")
VM_SETTINGS = "isolation: firecracker\nfirecracker: {{vcpus: 1, mem_mb: {mem}}}\n"


class ModeBench(Bench):
    """bench.cages' Bench for one isolation mode: its own cage config and figures."""

    mem_mib = 1024

    def __init__(self, harness: Harness, internet: Internet, build: Build, mode: str) -> None:
        super().__init__(harness, internet, build)
        self.mode = mode

    def config(self, name: str) -> Path:
        path = self.harness.shared / f"{name}.yaml"
        text = CONFIG.format(name=name, internet=self.internet.ip, subnet=INTERNET_SUBNET)
        if self.mode == "microvm":
            text += VM_SETTINGS.format(mem=self.mem_mib)
        path.write_text(text)
        return path

    def once(self, name: str) -> None:
        before = self.pss()
        created = self.create(name)
        verified = self.until_verified(name, timeout=900)
        up = self.pss()
        self.record("create", created)
        self.record("create->healthy (verify passes)", created + verified)
        self.record("PSS of the cage MiB", (up - before) / 2**20)
        self.record("destroy", self.destroy(name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cages per mode")
    parser.add_argument("--mem-mib", type=int, default=1024, help="the microVM's guest memory")
    parser.add_argument("--save", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    build = Build("this checkout", REPO / ".venv" / "bin" / "agentcage")
    build.compile_bytecode()
    ModeBench.mem_mib = args.mem_mib
    with contextmanager(running)(Harness, "bench-vm") as harness:
        internet = start_internet(harness)
        benches = {mode: ModeBench(harness, internet, build, mode) for mode in MODES}
        for mode, bench in benches.items():
            print(f"== {mode}: warm-up (image builds)", file=sys.stderr, flush=True)
            bench.destroy_after(bench.create, f"warm{mode[0]}")
        for run in range(args.runs):
            for mode, bench in benches.items():
                print(f"== {mode}: run {run + 1}", file=sys.stderr, flush=True)
                bench.once(f"bench{mode[0]}{run}")
    results = {mode: bench.figures for mode, bench in benches.items()}
    print(table(results), flush=True)  # its ratio column: microvm over container
    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
