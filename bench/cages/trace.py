"""Which processes each cage command runs, and for how long.

Run (the harness is shared, so always under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.cages.trace [--baseline REF]

Starts the systemd harness and the fake internet as `bench.cages` does, warms the images
up with one cage, then runs `cage create`, `list`, `verify`, `status` and `destroy`
under `strace -f -e execve` and prints, per command, every program it started (its argv,
cut short) with its wall time, and the count. `--baseline REF` traces a copy of REF
instead (made as `bench.cages` makes it). Each program started here costs a fork and
exec; each `podman exec` into the harness costs a Podman process here and there.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.cages.run import Bench, Build, baseline_build
from tests.e2e.harness import REPO, Harness, running, start_internet

_LINE = re.compile(r"^(\d+) +(\d+):(\d+):([\d.]+) (.*)$")
_EXECVE = re.compile(r'execve\("[^"]*", \[(.*?)\](?:, 0x[0-9a-f]+ /\* \d+ vars \*/)?\) = 0')
_EXIT = re.compile(r"\+\+\+ exited with (\d+) \+\+\+")


def processes(log: str) -> list[tuple[float, float, str]]:
    """(start, wall seconds, argv) of each successful execve in an `strace -f -tt` log."""
    started: dict[str, tuple[float, str]] = {}
    done = []
    for line in log.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        pid, hh, mm, ss, rest = match.groups()
        at = int(hh) * 3600 + int(mm) * 60 + float(ss)
        if execve := _EXECVE.search(rest):
            argv = " ".join(a.strip('"') for a in execve.group(1).split(", "))
            started[pid] = (at, argv)  # a second execve in the same pid replaces the first
        elif _EXIT.search(rest) and pid in started:
            begin, argv = started.pop(pid)
            done.append((begin, at - begin, argv))
    return sorted(done)


def traced(bench: Bench, *args: str) -> None:
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as log:
        start = time.monotonic()
        result = subprocess.run(
            ["strace", "-f", "-q", "-tt", "-e", "trace=execve", "-e", "signal=none",
             "-o", log.name, str(bench.build.agentcage), *args],
            capture_output=True, text=True, env=bench.harness.env(), timeout=600,
        )  # fmt: skip
        took = time.monotonic() - start
        rows = processes(Path(log.name).read_text())
    print(f"\n$ agentcage {' '.join(args)}: {took:.2f}s (under strace), exit {result.returncode}")
    first = rows[0][0] if rows else 0.0
    # The agentcage process itself is the first row; list what it started.
    for begin, wall, argv in rows[1:]:
        print(f"  +{begin - first:6.2f}s {wall:6.2f}s  {argv[:150]}")
    print(f"  {len(rows) - 1} processes")
    if result.returncode:
        print(result.stderr[-2000:], file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", help="trace this commit instead")
    args = parser.parse_args(argv)
    build = Build("this checkout", REPO / ".venv" / "bin" / "agentcage")
    if args.baseline:
        build = baseline_build(args.baseline)
    print(f"== {build.label}: {build.agentcage}")
    with contextmanager(running)(Harness, "trace") as harness:
        bench = Bench(harness, start_internet(harness), build)
        bench.destroy_after(bench.create, "warmup")
        bench.config("traced")
        config = str(harness.shared / "traced.yaml")
        ca = str(bench.internet.ca_pem)
        traced(bench, "cage", "create", "-c", config, "--upstream-ca", ca)
        traced(bench, "cage", "list")
        bench.until_verified("traced")
        traced(bench, "cage", "verify", "traced")
        traced(bench, "cage", "status", "traced")
        traced(bench, "cage", "destroy", "traced", "-y")
    return 0


if __name__ == "__main__":
    sys.exit(main())
