"""`cage create`, `cage verify` until it passes and `cage destroy` of two builds in turns.

Run (the harness is shared, so always under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.cages.pairs --baseline main [--rounds 5]

Each round creates one cage with the baseline's `agentcage`, runs `cage verify` until it
passes and destroys the cage, then does the same with this checkout's: both see the same
moment's load on the machine, which a run of each build in its own hour does not give
(`bench.cages` runs them one after the other). Prints min / median / max of each figure
per build and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager

from bench.cages.run import Bench, Build, Figures, baseline_build, table
from tests.e2e.harness import REPO, Harness, running, start_internet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", required=True, help="the other build")
    parser.add_argument("--rounds", type=int, default=5, help="create/destroy pairs per build")
    args = parser.parse_args(argv)
    builds = [baseline_build(args.baseline), Build("this checkout", REPO / ".venv/bin/agentcage")]
    for build in builds:
        build.compile_bytecode()
    results: dict[str, Figures] = {build.label: {} for build in builds}
    with contextmanager(running)(Harness, "pairs") as harness:
        internet = start_internet(harness)
        benches = [Bench(harness, internet, build) for build in builds]
        for bench in benches:
            bench.destroy_after(bench.create, "warmup")  # each build's images, once
            bench.figures = results[bench.build.label]
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}", file=sys.stderr, flush=True)
            for bench in benches:
                created = bench.create("pair")
                bench.record("create", created)
                verified = bench.until_verified("pair")
                bench.record("create->healthy (verify passes)", created + verified)
                bench.record("destroy", bench.destroy("pair"))
    print(table(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
