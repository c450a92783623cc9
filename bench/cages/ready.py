"""Each sidecar's start until READY=1, on this machine alone, two builds in turns.

Run (a benchmark: under the e2e lock, like the others):

    flock /work/e2e.lock .venv/bin/python -m bench.cages.ready --baseline main [--rounds 7]

Starts `agentcage dns run` and `agentcage proxy run` of each build (its own venv, bytecode
compiled) on loopback with a cage's JSON config and `NOTIFY_SOCKET` pointing at a socket
of this process, and times from the start of the process to its READY=1: each sidecar
alone, then both at once (as a cage starts them; the figure is the later of the two).
Each round runs both builds, in alternating order, so both see the same moment's load.
No Podman, no container start: what the sidecar's own process does before READY=1.
"CPU" figures are the CPU time each sidecar had used at its READY=1, its own and its
config check's (a child it has reaped by then), summed over the sidecars started: less
swayed by a busy machine than the seconds until READY=1, though not free of it.

Each build reads its own copy of the config, beside which it stores its config checks'
answers as `cage create` does (`store_check_answers`, run by the build's own Python), if
it has that (checked_ahead.py); a build without it checks the config in a child as ever.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.cages.run import Build, Figures, baseline_build, table
from tests.e2e.harness import REPO

_CONFIG = {
    "name": "ready",
    "container": {"image": "localhost/agentcage-agent-debian:bookworm"},
    "domains": {"allow": ["github.com"]},
    "dns_servers": ["127.0.0.1"],  # never asked: nothing queries the sidecar here
}
_STARTS = {"dns run": ("dns",), "proxy run": ("proxy",), "both at once": ("dns", "proxy")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", required=True, help="the other build")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    builds = [baseline_build(args.baseline), Build("this checkout", REPO / ".venv/bin/agentcage")]
    for build in builds:
        build.compile_bytecode()
    results: dict[str, Figures] = {build.label: {} for build in builds}
    with tempfile.TemporaryDirectory(prefix="agentcage-ready-") as tmp:
        work = Path(tmp)
        configs = {build.label: _config(build, work / str(n)) for n, build in enumerate(builds)}
        print(f"load {os.getloadavg()}", flush=True)
        for round_ in range(args.rounds):
            for build in builds if round_ % 2 == 0 else builds[::-1]:
                for figure, roles in _STARTS.items():
                    took, cpu = ready_after(build, roles, configs[build.label], work)
                    results[build.label].setdefault(figure, []).append(took)
                    results[build.label].setdefault(f"{figure}, CPU", []).append(cpu)
            print(f"round {round_ + 1}: load {os.getloadavg()}", flush=True)
    print(table(results))
    return 0


def ready_after(
    build: Build, roles: tuple[str, ...], config: Path, work: Path
) -> tuple[float, float]:
    """Seconds from starting `roles` at once until the last of them said READY=1, and
    the CPU seconds they had used at their READY=1, with their reaped children's."""
    run = Path(tempfile.mkdtemp(dir=work))
    sockets = {role: _notify_socket(run / f"{role}.sock") for role in roles}
    start = time.monotonic()
    children = dict(zip(roles, (_start(build, role, config, run) for role in roles), strict=True))
    cpu = 0.0
    try:
        with selectors.DefaultSelector() as waiting:
            for role, sock in sockets.items():
                waiting.register(sock, selectors.EVENT_READ, role)
            while waiting.get_map():
                ready = waiting.select(60)
                if not ready:
                    raise RuntimeError(f"no READY=1 within 60 s from {roles}")
                # Whichever says it first: its CPU is read before it goes on.
                for key, _ in ready:
                    if sockets[key.data].recv(64) != b"READY=1":
                        raise RuntimeError(f"{key.data}: not READY=1")
                    cpu += _cpu_used(children[key.data].pid)
                    waiting.unregister(key.fileobj)
        return time.monotonic() - start, cpu
    finally:
        for child in children.values():
            child.terminate()
        for child in children.values():
            child.communicate(timeout=30)
        for sock in sockets.values():
            sock.close()
        time.sleep(0.2)  # the sidecars' exits off the next start's CPU


_STORE = """
import sys
from pathlib import Path
try:
    from agentcage.cage.layout import store_check_answers
except ImportError:
    raise SystemExit(0)
path = Path(sys.argv[1])
print(" ".join(store_check_answers(path, path)))
"""


def _config(build: Build, directory: Path) -> Path:
    """The build's copy of the config, with its checks' answers where it stores them."""
    directory.mkdir()
    config = directory / "cage.json"
    config.write_text(json.dumps(_CONFIG))
    python = build.agentcage.parent / "python"
    stored = subprocess.run(
        [str(python), "-c", _STORE, str(config)], capture_output=True, text=True, check=True
    ).stdout.split()
    print(f"{build.label}: answers stored ahead for {stored or 'none'}", flush=True)
    return config


def _cpu_used(pid: int) -> float:
    """User and system time of `pid` and of the children it has waited for, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime: the 14th to 17th fields, counted from the state (3rd).
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(60)
    return sock


def _start(build: Build, role: str, config: Path, run: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NOTIFY_SOCKET"] = str(run / f"{role}.sock")
    extra = ["--ca-dir", str(run / "ca")] if role == "proxy" else []
    argv = [str(build.agentcage), role, "run", "--config", str(config)]
    argv += ["--listen", f"127.0.0.1:{_free_port()}", "--audit-log", str(run / f"{role}.log")]
    return subprocess.Popen(
        [*argv, *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
