"""Create -> verify passes, in a loop: the figure `cage verify` adds to create->healthy.

    flock /work/e2e.lock .venv/bin/python -m bench.cages.healthy [--baseline REF] [--runs 5]

Starts the harness and the fake internet as `bench.cages` does, warms the images up with
one cage, then `--runs` times: `cage create`, one `cage verify` (timed, its exit code
kept), `cage verify` again until it passes, `cage destroy`. Prints each run and the
min / median / max of each figure, with the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager

from bench.cages.run import Bench, build_under_test, summary
from tests.e2e.harness import Harness, running, start_internet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", help="run a copy of this commit instead")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    build = build_under_test(args.baseline)
    figures: dict[str, list[float]] = {}
    with contextmanager(running)(Harness, "healthy") as harness:
        bench = Bench(harness, start_internet(harness), build)
        bench.destroy_after(bench.create, "warmup")
        for run in range(args.runs):
            created = bench.create("healthy")
            start = time.monotonic()
            first = bench.agentcage("cage", "verify", "healthy")
            once = time.monotonic() - start
            verified = once if first.returncode == 0 else once + bench.until_verified("healthy")
            destroyed = bench.destroy("healthy")
            row = {
                "create": created,
                "first verify": once,
                "create->healthy (verify passes)": created + verified,
                "destroy": destroyed,
            }
            for key, value in row.items():
                figures.setdefault(key, []).append(value)
            print(
                f"run {run + 1}: create {created:.2f}s, first verify {once:.2f}s "
                f"(exit {first.returncode}), create->verified {created + verified:.2f}s, "
                f"destroy {destroyed:.2f}s",
                flush=True,
            )
            if first.returncode:
                print(first.stdout[-3000:], first.stderr[-1500:], flush=True)
    for key, values in figures.items():
        print(f"{key}: {summary(values)}")
    print(f"load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
