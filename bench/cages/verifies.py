"""`cage verify` of one running cage by two builds in turns.

Run (the harness is shared, so always under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.cages.verifies --baseline main [--rounds 10]

Creates one cage with this checkout's `agentcage` and waits until `cage verify` passes,
then each round runs one `cage verify` of it with the baseline's build and one with this
checkout's, in alternating order (every one must pass): both verify the same cage at the
same moment's load, with nothing else of a cage's life (create, destroy) between them.
Prints min / median / max per build, the ratio of the medians and the load average
before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager

from bench.cages.run import Bench, Build, Figures, baseline_build, table
from tests.e2e.harness import REPO, Harness, running, start_internet

CAGE = "verified"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", required=True, help="the other build")
    parser.add_argument("--rounds", type=int, default=10, help="verifies per build")
    # The proxy audits at most 20 refused flows per agent address in 10 s; past that a
    # verify's flow checks wait up to 12 s for the listener's summary line instead
    # (docs/cages.md): back to back, every third round or so did. A pause keeps under it.
    parser.add_argument("--pause", type=float, default=4.0, help="seconds between verifies")
    args = parser.parse_args(argv)
    builds = [baseline_build(args.baseline), Build("this checkout", REPO / ".venv/bin/agentcage")]
    for build in builds:
        build.compile_bytecode()
    results: dict[str, Figures] = {build.label: {} for build in builds}
    with contextmanager(running)(Harness, "verifies") as harness:
        internet = start_internet(harness)
        benches = [Bench(harness, internet, build) for build in builds]
        ours = benches[-1]
        ours.create(CAGE)
        ours.until_verified(CAGE)
        print(f"load average before: {os.getloadavg()}", flush=True)
        for round_ in range(args.rounds):
            # Each build goes first in every other round: neither always follows the other.
            for bench in benches if round_ % 2 == 0 else benches[::-1]:
                bench.figures = results[bench.build.label]
                time.sleep(args.pause)
                bench.record("cage verify (passes)", bench.timed("cage", "verify", CAGE))
            print(f"round {round_ + 1}, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        print(f"load average after: {os.getloadavg()}", flush=True)
        ours.destroy(CAGE)
    print(table(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
