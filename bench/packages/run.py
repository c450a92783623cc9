"""Install time through a cage against installing directly, for npm ci, pip and uv.

Run: .venv/bin/python bench/packages/run.py [--rounds N] [--runs npm-ci,pip,uv]
Needs what the end-to-end tests need (sudo scripts/setup-host, Podman) and no other
e2e run at the same time. It starts the systemd harness, the fake internet serving the
registries tests/e2e/registries builds (320 npm packages, 60 Python projects), and the
`pkg` cage of tests/e2e/test_packages.py: the default config, only the allowlist and
the test's CA. "direct" is a container of the same image, user, tmpfs and dropped
capabilities on the fake internet's own network: same registries, same machine, no
proxy and no DNS sidecar in the way.

Every run starts cold (a fresh directory, an empty cache) and is timed inside the
container. Cage and direct take turns, the first alternating per round, so drift on a
shared machine falls on both alike. Prints median seconds and the ratio (target: at
most 1.3x), and for the caged runs how many requests the registries received and how
many decision lines the audit log holds (they must be equal), and how many it blocked.
The registries answer at loopback speed, which is the worst case for the cage: the
proxy's own time per request is all it adds, where a real registry's round trips
would dwarf it.
Speed is reported, not asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import (  # noqa: E402
    INTERNET_IP,
    INTERNET_NETWORK,
    Harness,
    Internet,
    start_internet,
)
from tests.e2e.package_cage import (  # noqa: E402
    CAGE,
    Window,
    cage_config,
    deploy,
    in_agent,
)
from tests.e2e.package_runs import NPM9_CI, NPM_CI, PIP, UV, WORK, PackageRun  # noqa: E402
from tests.e2e.registries import CLIENT_MOUNT  # noqa: E402

RUNS = {run.id: run for run in (NPM_CI, NPM9_CI, PIP, UV)}
DIRECT = "pkg-direct"
TARGET = 1.3
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO")


def timed(script: str) -> str:
    """The run's script, timed inside the container; its output kept for failures."""
    return (
        "s=$(date +%s%N)\n"
        f"( {script} ) >{WORK}/bench.log 2>&1 || {{ tail -n 20 {WORK}/bench.log; exit 1; }}\n"
        'echo "ELAPSED_MS $(( ($(date +%s%N) - s) / 1000000 ))"'
    )


def seconds(output: str, where: str, run: PackageRun) -> float:
    for line in output.splitlines():
        if line.startswith("ELAPSED_MS "):
            return int(line.split()[1]) / 1000
    raise SystemExit(f"{run.id} failed {where}:\n{output[-3000:]}")


def start_direct(harness: Harness, internet: Internet) -> None:
    env = [f"{name}=/etc/internet-ca.pem" for name in CA_VARIABLES]
    harness.exec(
        "podman", "run", "-d", "--name", DIRECT, "--pull=never",
        f"--network={INTERNET_NETWORK}", f"--dns={INTERNET_IP}",
        "--user", "1000:1000", "--cap-drop=ALL", "--security-opt=no-new-privileges",
        "--tmpfs", f"{WORK}:rw,exec,nosuid,nodev,size=1g,mode=1777",
        "-v", f"{internet.registries.client}:{CLIENT_MOUNT}:ro",
        "-v", f"{internet.ca_pem}:/etc/internet-ca.pem:ro",
        "-e", f"HOME={WORK}", *[arg for e in env for arg in ("-e", e)],
        internet.image, "sleep", "infinity",
    )  # fmt: skip


def direct(harness: Harness, internet: Internet, run: PackageRun) -> tuple[float, str]:
    start = len(internet.http())
    out = harness.exec(
        "podman", "exec", "-w", WORK, DIRECT, "sh", "-c", timed(run.script), check=False
    )  # fmt: skip
    received = internet.http()[start:]
    return seconds(out, "directly", run), f"{len({r['client'] for r in received})} conns"


def caged(harness: Harness, internet: Internet, run: PackageRun) -> tuple[float, str]:
    window = Window(harness, internet)
    elapsed = seconds(in_agent(harness, timed(run.script)), "in the cage", run)
    lines = [r for r in window.audit() if r["kind"] == "http"]
    arrived = Counter(r["host"] for r in window.received())
    audited = Counter(r["host"] for r in lines)
    blocked = sum(r["verdict"] == "block" for r in lines)
    mark = "" if arrived == audited and not blocked else "  <-- MISMATCH"
    return elapsed, (
        f"{sum(arrived.values())}/{sum(audited.values())}, {blocked} blocked, "
        f"{len({r['client'] for r in lines})} conns{mark}"
    )


def describe(times: list[float]) -> str:
    return f"{statistics.median(times):6.2f} ({min(times):.2f}-{max(times):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated run ids")
    args = parser.parse_args()
    runs = [RUNS[name] for name in args.runs.split(",")]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY"):
        os.environ.pop(name, None)
    harness = Harness(
        name=f"agentcage-bench-{os.getpid()}",
        workdir=Path(tempfile.mkdtemp(prefix="agentcage-bench-")),
    )
    print(f"machine: {os.cpu_count()} cores; setting up (harness, registries, cage) ...")
    harness.start()
    try:
        internet = start_internet(harness)
        deploy(harness, internet, "create", cage_config(internet))
        start_direct(harness, internet)
        results = []
        for run in runs:
            times: dict[str, list[float]] = {"direct": [], "cage": []}
            notes = {"direct": "", "cage": ""}
            for n in range(args.rounds):
                for where in ("direct", "cage") if n % 2 == 0 else ("cage", "direct"):
                    measure = direct if where == "direct" else caged
                    elapsed, notes[where] = measure(harness, internet, run)
                    times[where].append(elapsed)
                print(f"  {run.id} round {n + 1}: direct {times['direct'][-1]:.2f}s "
                      f"({notes['direct']}), cage {times['cage'][-1]:.2f}s "
                      f"(received/audited {notes['cage']})")  # fmt: skip
            ratio = statistics.median(times["cage"]) / statistics.median(times["direct"])
            results.append((run.id, times, ratio, notes["cage"]))
        print(f"\n{'run':8} {'direct s, median (min-max)':>28} {'cage s':>22} {'ratio':>7}"
              f"  target  received/audited (last round)")  # fmt: skip
        for run_id, times, ratio, audit in results:
            verdict = "ok" if ratio <= TARGET else "OVER"
            print(f"{run_id:8} {describe(times['direct']):>28} {describe(times['cage']):>22} "
                  f"{ratio:6.2f}x  {verdict:6}  {audit}")  # fmt: skip
    finally:
        harness.agentcage("cage", "destroy", CAGE, "-y")
        harness.stop()


if __name__ == "__main__":
    main()
