"""Create, verify, list and destroy cages in the systemd harness; report the times.

Run (the harness is shared, so always under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.cages [--quick] [--max 50] [--baseline main]

For each build (this checkout, and with --baseline REF a copy of REF made with
`git archive` and bootstrapped under ~/.cache/agentcage/bench-baseline/) it starts one
Podman 5 harness (tests/e2e/harness.py), warms the images up with one cage, then:

* one cage, `--runs` times: `cage create`, then `cage verify` until it passes
  (create->healthy is the sum), then `cage destroy`;
* 10 and `--max` cages (`--quick`: 10 only; `--counts N...`: those only): creates them
  one after another, times `cage list` and `cage status` of one of them three times
  each, takes the harness's proportional set size (PSS of every process in it) per cage
  and its CPU use over 30 idle seconds, then destroys them.

Both builds run with their modules compiled to bytecode (`Build.compile_bytecode`).
Every cage is the same small one: a `sleep infinity` agent on the Debian agent image,
allowed to reach github.com on the e2e tests' fake internet (which `cage verify` needs).
Prints min / median / max per figure, the builds side by side. `--save FILE` keeps the
figures as JSON, `--compare FILE` puts saved figures beside the new ones.
Speed is reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import INTERNET_SUBNET, REPO, Harness, Internet, running, start_internet

Figures = dict[str, list[float]]
CACHE = Path.home() / ".cache" / "agentcage" / "bench-baseline"
CONFIG = """\
name: {name}
container:
  image: localhost/agentcage-agent-debian:bookworm
  command: ["sleep", "infinity"]
domains:
  allow: [github.com]
dns_servers: [{internet}]
network:
  allow_cidrs: [{subnet}]
"""


@dataclass(frozen=True)
class Build:
    label: str
    agentcage: Path  # the `agentcage` of the checkout under test

    def compile_bytecode(self) -> None:
        """Compile the build's modules, as an installed agentcage has them.

        pip compiles at install and Python caches what it imports on the first run, but
        `uv sync` does neither up front, and this machine sets PYTHONDONTWRITEBYTECODE=1:
        every CLI call then compiled its modules again (0.3-0.4 s a call here). Each
        build is compiled the same way, so that is not part of any ratio.
        """
        venv = self.agentcage.parent.parent
        checkout = venv.parent
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j0",
             str(venv / "lib"), str(checkout / "src")],
            capture_output=True, check=False,
        )  # fmt: skip


def baseline_build(ref: str) -> Build:
    """A bootstrapped copy of `ref` (files only, no git), reused while `ref` is unchanged."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    checkout = CACHE / sha[:12]
    binary = checkout / ".venv" / "bin" / "agentcage"
    if not binary.exists():
        checkout.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "-C", str(REPO), "archive", sha], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(checkout)], stdin=archive.stdout, check=True)
        archive.wait()
        subprocess.run(["bash", "scripts/bootstrap"], cwd=checkout, check=True)
    return Build(f"{ref} ({sha[:8]})", binary)


def build_under_test(baseline: str | None) -> Build:
    """This checkout, or a copy of `baseline` when given; announced, then compiled."""
    if baseline:
        build = baseline_build(baseline)
    else:
        build = Build("this checkout", REPO / ".venv" / "bin" / "agentcage")
    print(f"== {build.label}: {build.agentcage}; load {os.getloadavg()}", flush=True)
    build.compile_bytecode()
    return build


class Bench:
    def __init__(self, harness: Harness, internet: Internet, build: Build) -> None:
        self.harness = harness
        self.internet = internet
        self.build = build
        self.figures: Figures = {}

    def agentcage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.build.agentcage), *args],
            capture_output=True,
            text=True,
            env=self.harness.env(),
            timeout=900,
        )

    def timed(self, *args: str) -> float:
        start = time.monotonic()
        result = self.agentcage(*args)
        took = time.monotonic() - start
        if result.returncode != 0:
            raise RuntimeError(f"agentcage {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return took

    def record(self, figure: str, value: float) -> None:
        self.figures.setdefault(figure, []).append(value)
        print(f"  {figure}: {value:.3f}", file=sys.stderr, flush=True)

    def config(self, name: str) -> Path:
        path = self.harness.shared / f"{name}.yaml"
        path.write_text(CONFIG.format(name=name, internet=self.internet.ip, subnet=INTERNET_SUBNET))
        return path

    def create(self, name: str) -> float:
        config, ca = str(self.config(name)), str(self.internet.ca_pem)
        return self.timed("cage", "create", "-c", config, "--upstream-ca", ca)

    def until_verified(self, name: str, timeout: float = 60) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.agentcage("cage", "verify", name).returncode == 0:
                return time.monotonic() - start
        raise RuntimeError(f"cage {name} never passed `cage verify`")

    def destroy(self, name: str) -> float:
        return self.timed("cage", "destroy", name, "-y")

    def single(self, runs: int) -> None:
        self.destroy_after(self.create, "warmup")  # builds the images once
        for _ in range(runs):
            created = self.create("bench")
            verified = self.until_verified("bench")
            self.record("create", created)
            self.record("create->healthy (verify passes)", created + verified)
            self.record("destroy", self.destroy("bench"))

    def destroy_after(self, action: Callable[[str], float], name: str) -> None:
        action(name)
        self.destroy(name)

    def many(self, count: int, idle: bool) -> None:
        names = [f"bench{i}" for i in range(count)]
        before = self.pss()
        for name in names:
            self.record(f"create ({count} cages, each)", self.create(name))
        for _ in range(3):
            self.record(f"cage list ({count} cages)", self.timed("cage", "list"))
        for _ in range(3):
            self.record(f"cage status ({count} cages)", self.timed("cage", "status", names[0]))
        self.record(f"PSS per cage MiB ({count} cages)", (self.pss() - before) / count / 2**20)
        if idle:
            self.record(f"idle CPU % of 2 cores ({count} cages)", self.idle_cpu(30))
        for name in names:
            self.record(f"destroy ({count} cages, each)", self.destroy(name))

    def pss(self) -> int:
        """Proportional set size of every process in the harness, in bytes."""
        out = self.harness.exec(
            "sh", "-c", "cat /proc/[0-9]*/smaps_rollup 2>/dev/null", check=False
        )
        return sum(
            int(line.split()[1]) * 1024 for line in out.splitlines() if line.startswith("Pss:")
        )

    def idle_cpu(self, seconds: float) -> float:
        def used() -> float:
            out = self.harness.exec("cat", "/sys/fs/cgroup/cpu.stat", check=False)
            for line in out.splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
            out = self.harness.exec("cat", "/sys/fs/cgroup/cpuacct/cpuacct.usage", check=False)
            return int(out.strip() or 0) / 1e9

        start, wall = used(), time.monotonic()
        time.sleep(seconds)
        return (used() - start) / (time.monotonic() - wall) / (os.cpu_count() or 1) * 100


def run_build(build: Build, runs: int, counts: list[int]) -> Figures:
    print(f"== {build.label}: {build.agentcage}", file=sys.stderr)
    build.compile_bytecode()
    with contextmanager(running)(Harness, "bench") as harness:
        bench = Bench(harness, start_internet(harness), build)
        bench.single(runs)
        for count in counts:
            bench.many(count, idle=count == counts[-1])
    return bench.figures


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    return (
        f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f} (n={len(values)})"
    )


def table(results: dict[str, Figures]) -> str:
    labels = list(results)
    figures = list(dict.fromkeys(f for figs in results.values() for f in figs))
    width = max(len(f) for f in figures) + 2
    lines = [
        "min / median / max, seconds unless noted; ratio: median of the last build over the first",
        "",
    ]
    ratio = ["ratio"] if len(labels) > 1 else []
    lines.append("".ljust(width) + "".join(label.ljust(34) for label in [*labels, *ratio]))
    for figure in figures:
        cells = "".join(summary(results[label].get(figure, [])).ljust(34) for label in labels)
        if ratio:
            cells += median_ratio(results[labels[0]].get(figure), results[labels[-1]].get(figure))
        lines.append(figure.ljust(width) + cells)
    return "\n".join(lines)


def median_ratio(first: list[float] | None, last: list[float] | None) -> str:
    if not first or not last or statistics.median(first) == 0:
        return "-"
    return f"{statistics.median(last) / statistics.median(first):.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 cages, 3 runs")
    parser.add_argument("--max", type=int, default=50, help="the largest number of cages")
    parser.add_argument("--runs", type=int, default=5, help="single-cage runs")
    parser.add_argument(
        "--counts", type=int, nargs="+", metavar="N", help="these numbers of cages only"
    )
    parser.add_argument("--baseline", metavar="REF", help="also bench this commit, first")
    parser.add_argument("--only-baseline", action="store_true", help="skip this checkout")
    parser.add_argument("--save", type=Path, help="write the figures as JSON")
    parser.add_argument("--compare", type=Path, action="append", default=[], help="saved JSON")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    counts = [10] if args.quick else sorted({10, args.max})
    if args.counts:
        counts = sorted(set(args.counts))
    results: dict[str, Figures] = {}
    for path in args.compare:
        results.update(json.loads(path.read_text()))
    builds = [baseline_build(args.baseline)] if args.baseline else []
    if not args.only_baseline:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=8", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        builds.append(Build(f"this checkout ({head})", REPO / ".venv" / "bin" / "agentcage"))
    fresh: dict[str, Figures] = {}
    for build in builds:
        fresh[build.label] = run_build(build, runs, counts)
        results[build.label] = fresh[build.label]
        print(table(results), flush=True)
    if args.save:
        args.save.write_text(json.dumps(fresh, indent=2) + "\n")
    return 0
