"""Default deny's setup step of the agent's unit, with and without `podman container inspect`.

Run (the harness is shared, so always under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.cages.steering_step [--rounds 15]

Creates one cage in the systemd harness, then runs the agent's `ExecStartPost=` setup
line (cage/steering_entry.py) in the harness by hand, in turns: as this checkout renders
it (both PIDs from the containers' PID files) and with main's entry (both PIDs from one
`podman container inspect`). Each run is timed inside the harness, so the `podman exec`
that carries it is not counted. Both give the agent its route and connect once to the
deny listener (one audit line each). Prints min / median / max of each and the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
from contextlib import contextmanager

from bench.cages.run import Bench, Build
from tests.e2e.harness import REPO, Harness, running, start_internet

from agentcage.cage.contract import PODMAN, PYTHON, STEERING_MODULE
from agentcage.cage.steering_entry import KEPT, NAME, SCRIPT, SHELL, USER_NAMESPACE, enter

CAGE = "steer"
TIMED = 'a=$(date +%s%N); "$@"; s=$?; b=$(date +%s%N); echo "$s $(((b - a) / 1000))"'


def _inspect_script(privileges: str, program: str) -> str:
    """The step as it was before the PID files: one `podman container inspect` for both."""
    return (
        f'set -e; pids=$({PODMAN} container inspect --format={{{{.State.Pid}}}} "$1" "$2"); '
        "proxy=${pids%%[!0-9]*}; target=${pids##*[!0-9]}; "
        '[ "$proxy" -gt 0 ] && [ "$target" -gt 0 ] || exit 1; '
        f"{USER_NAMESPACE}{enter(2, privileges, program)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    build = Build("this checkout", REPO / ".venv/bin/agentcage")
    build.compile_bytecode()
    with contextmanager(running)(Harness, "steer") as harness:
        bench = Bench(harness, start_internet(harness), build)
        bench.create(CAGE)
        try:
            proxy, agent = f"agentcage-{CAGE}-proxy", f"agentcage-{CAGE}-agent"
            proxy_ip = harness.exec(
                "podman", "container", "inspect", proxy, "--format",
                f"{{{{(index .NetworkSettings.Networks \"agentcage-{CAGE}-int\").IPAddress}}}}",
            ).strip()  # fmt: skip
            step = ("-m", STEERING_MODULE, "agent", proxy_ip)
            old = _inspect_script(" ".join(KEPT), f'{PYTHON} -I "$@"')
            lines = {
                "PID files": (SHELL, "-c", SCRIPT, NAME, "/run", proxy, agent, *step),
                "podman inspect": (SHELL, "-c", old, NAME, proxy, agent, *step),
            }
            took: dict[str, list[float]] = {label: [] for label in lines}
            for _ in range(args.rounds):
                for label, line in lines.items():
                    status, micros = harness.exec("sh", "-c", TIMED, "timed", *line).split()
                    if status != "0":
                        raise SystemExit(f"{label}: the setup failed ({status})")
                    took[label].append(int(micros) / 1e6)
            for label, values in took.items():
                low, mid, high = min(values), statistics.median(values), max(values)
                print(f"{label:15} {low:.3f} / {mid:.3f} / {high:.3f} s (n={len(values)})")
            print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        finally:
            bench.destroy(CAGE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
