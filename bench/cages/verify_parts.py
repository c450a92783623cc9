"""Where `cage verify`'s network checks spend their time, part by part.

Run (the harness is shared, so always under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.cages.verify_parts [--rounds 8]

Creates one cage with this checkout's `agentcage` (the bench's cage, bench/cages/run.py)
and waits until `cage verify` passes. Then, each round, `--pause` seconds apart (the
deny listener's line budget, bench/cages/verifies.py): one `cage verify` timed from
here, then the network checks' own script (verify_network.py) run inside the harness
as verify runs it, with two differences that only add timestamps: the shell prints the
time before its `podman container inspect`, after it, and after its reads, and the
image's Python runs netcheck through a small wrapper that times its imports, each check
(netcheck._outcome) and the wait for the refused flows' audit lines
(netcheck.with_flow_lines). Prints each part's min / median / max over the rounds.
Every wrapped run must still pass all its checks (but netcheck's own route row, which
verify replaces with the route read from the agent).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

from bench.cages.run import Bench, Build
from tests.e2e.harness import REPO, Harness, running, start_internet

from agentcage.cage import topology, verify_config
from agentcage.cage.contract import NETCHECK_MODULE
from agentcage.cage.state import StateStore
from agentcage.cage.steering_entry import USER_NAMESPACE, enter
from agentcage.cage.verify import _DEFAULT_DENY
from agentcage.cage.verify_network import _INSPECT, _READS, UNPRIVILEGED, netcheck_command

CAGE = "parted"

# Runs netcheck as `python -m` would, timing its parts; the times go to stderr.
WRAPPER = """
import time
times = [("python started", time.time())]
import json, sys
import agentcage.cage.netcheck as netcheck
times.append(("netcheck imported", time.time()))
outcome, flow_lines = netcheck._outcome, netcheck.with_flow_lines
def timed_outcome(check):
    start = time.time()
    try:
        return outcome(check)
    finally:
        times.append(("check: " + check[0], start, time.time()))
def timed_flow_lines(*args):
    start = time.time()
    try:
        return flow_lines(*args)
    finally:
        times.append(("audit lines waited for", start, time.time()))
netcheck._outcome, netcheck.with_flow_lines = timed_outcome, timed_flow_lines
code = netcheck.main(sys.argv[1:])
times.append(("netcheck done", time.time()))
sys.stderr.write("agentcage-times " + json.dumps(times) + "\\n")
sys.exit(code)
"""


def _stamp(label: str) -> str:
    return f'echo "agentcage-stamp {label} $(date +%s.%N)" >&2; '


def timed_command(cage: str) -> list[str]:
    """verify_network's argv for `cage`, with the stamps and the wrapper put in."""
    store = StateStore()
    topo = topology.load(store, cage)
    assert topo is not None
    config = verify_config.load(store, cage)
    argv = list(netcheck_command(config.transparent, topo, config.allowed_host))
    script = (
        "set -e; " + _stamp("script") + _INSPECT + _stamp("inspected") + USER_NAMESPACE
        + _READS + _stamp("read") + enter(3, " ".join(UNPRIVILEGED), '"$@"')
    )  # fmt: skip
    argv[2] = script
    module = argv.index(NETCHECK_MODULE)
    argv[module - 1 : module + 1] = ["-c", WRAPPER]
    return argv


def parts(stderr: str, started: float) -> dict[str, float]:
    """Seconds per part from the stamps and the wrapper's times."""
    stamps = {}
    times: list[list[object]] = []
    for line in stderr.splitlines():
        if line.startswith("agentcage-stamp "):
            _, label, at = line.split()
            stamps[label] = float(at)
        elif line.startswith("agentcage-times "):
            times = json.loads(line.split(" ", 1)[1])
    at = {str(t[0]): float(t[1]) for t in times if len(t) == 2}  # type: ignore[arg-type]
    out = {
        "until the script starts (podman exec)": stamps["script"] - started,
        "podman container inspect": stamps["inspected"] - stamps["script"],
        "the sidecars' reads": stamps["read"] - stamps["inspected"],
        "nsenter, setpriv, Python's start": at["python started"] - stamps["read"],
        "netcheck's imports": at["netcheck imported"] - at["python started"],
    }
    first = min(float(t[1]) for t in times if len(t) == 3)  # type: ignore[arg-type]
    out["imported until the first check"] = first - at["netcheck imported"]
    for t in times:
        if len(t) == 3:
            out[str(t[0])] = float(t[2]) - float(t[1])  # type: ignore[arg-type]
            if str(t[0]).startswith("check: "):
                out["checks' end after the first's start (" + str(t[0])[7:] + ")"] = (
                    float(t[2]) - first  # type: ignore[arg-type]
                )
    out["netcheck's start to its end"] = at["netcheck done"] - at["python started"]
    out["whole script"] = at["netcheck done"] - stamps["script"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--pause", type=float, default=4.0, help="seconds between verifies")
    args = parser.parse_args(argv)
    build = Build("this checkout", REPO / ".venv/bin/agentcage")
    build.compile_bytecode()
    figures: dict[str, list[float]] = {}
    with contextmanager(running)(Harness, "verifyparts") as harness:
        os.environ["XDG_CONFIG_HOME"] = harness.env()["XDG_CONFIG_HOME"]
        internet = start_internet(harness)
        bench = Bench(harness, internet, build)
        bench.create(CAGE)
        bench.until_verified(CAGE)
        print(f"load average before: {os.getloadavg()}", flush=True)
        for round_ in range(args.rounds):
            time.sleep(args.pause)
            figures.setdefault("cage verify (CLI)", []).append(bench.timed("cage", "verify", CAGE))
            time.sleep(args.pause)
            # A new command each round: each has its own UDP address (verify_network.udp_host).
            command = timed_command(CAGE)
            started = time.time()
            result = subprocess.run(
                ["podman", "exec", harness.name, *command], capture_output=True, text=True
            )
            rows = json.loads(result.stdout.strip().splitlines()[-1])
            # verify takes default deny's route from the agent itself and drops netcheck's
            # (whose /proc/net is the proxy's /proc, verify._network).
            failed = [r["name"] for r in rows if not r["passed"] and r["name"] not in _DEFAULT_DENY]
            if failed:
                raise RuntimeError(f"failed: {failed}\n{result.stdout}\n{result.stderr}")
            for name, seconds in parts(result.stderr, started).items():
                figures.setdefault(name, []).append(seconds)
            print(f"round {round_ + 1}, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        print(f"load average after: {os.getloadavg()}", flush=True)
        bench.destroy(CAGE)
    width = max(len(name) for name in figures)
    for name, values in figures.items():
        low, mid, high = min(values), statistics.median(values), max(values)
        print(f"{name:<{width}}  {low:.3f} / {mid:.3f} / {high:.3f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
