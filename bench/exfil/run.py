"""Run the exfiltration benchmark and print its table.

    .venv/bin/python -m bench.exfil                 # through the real proxy
    .venv/bin/python -m bench.exfil --via policy    # Policy in-process (fast)
    .venv/bin/python -m bench.exfil --reps 1        # fewer cases per technique
    .venv/bin/python -m bench.exfil --named-fields block   # a secrets setting

Everything runs on 127.0.0.1; the same seed gives the same cases. Prints ratios,
asserts nothing; the exit status is 0 unless the harness itself fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/exfil/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.exfil.benign import benign_cases
from bench.exfil.cases import malicious_cases
from bench.exfil.redteam import ALL_TECHNIQUES, ALL_TIERS
from bench.exfil.report import render
from bench.exfil.runners import Outcome, make_runner
from bench.exfil.world import make_secrets

MODES = {"given": "secrets given to the proxy", "patterns": "patterns alone"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.exfil", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=2, help="cases per technique and secret")
    parser.add_argument("--benign-reps", type=int, default=6, help="cases per benign shape")
    parser.add_argument(
        "--tiers", nargs="+", choices=ALL_TIERS, default=ALL_TIERS, help="attack tiers to run"
    )
    parser.add_argument("--via", choices=["proxy", "policy"], default="proxy")
    parser.add_argument(
        "--named-fields",
        choices=["off", "flag", "block"],
        help="the cage's secrets.named_fields (default: the config's default)",
    )
    args = parser.parse_args(argv)

    secrets = make_secrets(args.seed)
    techniques = {k: v for k, v in ALL_TECHNIQUES.items() if v[0] in args.tiers}
    cases = malicious_cases(secrets, args.seed, args.reps, techniques)
    cases += benign_cases(secrets, args.seed, args.benign_reps)
    results: dict[str, list[Outcome]] = {}
    started = time.monotonic()
    for mode in MODES:
        runner = make_runner(args.via, mode, secrets, cases, args.named_fields)
        try:
            results[mode] = [runner.run(case) for case in cases]
        finally:
            if hasattr(runner, "close"):
                runner.close()
    print(render(results, args.via, args.seed))
    print(f"modes: {MODES}; {len(cases)} cases per mode; {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
