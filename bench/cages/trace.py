"""Which processes each cage command runs, and for how long.

Run (the harness is shared, so always under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.cages.trace [--baseline REF]

Starts the systemd harness and the fake internet as `bench.cages` does, warms the images
up with one cage, then runs `cage create`, `list`, `verify`, `status` and `destroy`
under `strace -f -e execve` and prints, per command, every program it started (its argv,
cut short) with its wall time, and the count. `--baseline REF` traces a copy of REF
instead (made as `bench.cages` makes it). Each program started here costs a fork and
exec; each `podman exec` into the harness costs a Podman process here and there.

`--timed` runs each command through `bench.cages.timed` instead of strace: every
systemctl and podman command it sends down its exec session, with its wall time, and
after `create` and `destroy` the journal of the cage's units in the harness (when each
unit started, became ready, stopped). `--many N` first creates N idle cages and times the
commands beside them (what grows with the number of cages), then destroys them.
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

from bench.cages.run import Bench, build_under_test
from tests.e2e.harness import Harness, running, start_internet

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


def timed(bench: Bench, *args: str) -> None:
    start = time.monotonic()
    # The build's own Python and checkout (the baseline's with --baseline), not this one's.
    venv = bench.build.agentcage.parent.parent
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "bench.cages.timed", *args],
        capture_output=True, text=True, env=bench.harness.env(), timeout=600, cwd=venv.parent,
    )  # fmt: skip
    took = time.monotonic() - start
    print(f"\n$ agentcage {' '.join(args)}: {took:.2f}s, exit {result.returncode}")
    print(result.stderr.rstrip())


def journal(bench: Bench, cage: str, since: str) -> None:
    out = bench.harness.exec(
        "journalctl", "-o", "short-precise", "--no-pager", "--since", since, check=False,
    )  # fmt: skip
    print(f"  journal since {since} (the cage's units, health checks, network setup):")
    for line in out.splitlines()[:200]:
        print(f"    {line[:200]}")


# Per process in the harness: command name and CPU ticks used so far (utime + stime).
_TICKS = r"""for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null && echo "$l"; done"""


def ticks(bench: Bench) -> dict[str, tuple[str, int]]:
    out = bench.harness.exec("sh", "-c", _TICKS, check=False)
    found = {}
    for line in out.splitlines():
        pid, _, rest = line.partition(" (")
        comm, _, fields = rest.rpartition(") ")
        parts = fields.split()
        if len(parts) > 12:
            found[pid] = (comm, int(parts[11]) + int(parts[12]))
    return found


def idle(bench: Bench, count: int, seconds: float) -> None:
    """CPU over `seconds` with `count` idle cages: per long-lived process kind, and the rest."""
    names = [f"idle{i}" for i in range(count)]
    for name in names:
        bench.create(name)
    before = ticks(bench)
    start = time.monotonic()
    used_total = bench.idle_cpu(seconds)
    after = ticks(bench)
    wall = time.monotonic() - start
    by_comm: dict[str, int] = {}
    for pid, (comm, used) in after.items():
        if pid in before:
            by_comm[comm] = by_comm.get(comm, 0) + used - before[pid][1]
    print(f"\nidle {count} cages, {wall:.0f}s: {used_total:.2f}% of 2 cores in all (cgroup)")
    share = {comm: used / 100 / wall / 2 * 100 for comm, used in by_comm.items()}  # 100 Hz
    for comm, pct in sorted(share.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {comm:20s} {pct:6.3f}% of 2 cores")
    rest = used_total - sum(share.values())
    print(f"  {'(processes that came and went: health checks)':20s} {rest:6.3f}% of 2 cores")
    for name in names:
        bench.destroy(name)


# Per process in the harness: its PSS and anonymous PSS (kB), then its command line.
_MEMORY = r"""for d in /proc/[0-9]*; do
  p=$(grep -E '^(Pss|Pss_Anon):' "$d/smaps_rollup" 2>/dev/null | awk '{printf "%s ", $2}')
  [ -n "$p" ] && echo "$p$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)"
done"""


_SIDECARS = ("agentcage proxy", "agentcage dns", "dnsmasq")


def memory(bench: Bench, cage: str) -> None:
    """PSS and anonymous PSS of each process whose command line names the cage."""
    print(f"  memory of the processes of cage {cage} (PSS, anonymous PSS; MiB):")
    for line in bench.harness.exec("sh", "-c", _MEMORY, check=False).splitlines():
        words = line.split()
        if len(words) < 3 or not words[1].isdigit():
            continue  # no anonymous PSS given, or no command line (a kernel thread)
        pss, anon, command = words[0], words[1], " ".join(words[2:])
        if cage in command or any(name in command for name in _SIDECARS):
            print(f"    {int(pss) / 1024:6.1f} {int(anon) / 1024:6.1f}  {command[:80]}")


def harness_now(bench: Bench) -> str:
    return bench.harness.exec("date", "+%Y-%m-%d %H:%M:%S.%N").strip()[:23]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", help="trace this commit instead")
    parser.add_argument("--timed", action="store_true", help="time each command (no strace)")
    parser.add_argument("--idle", type=int, metavar="N", help="CPU by process with N idle cages")
    parser.add_argument("--many", type=int, default=0, metavar="N", help="N cages beside (--timed)")
    args = parser.parse_args(argv)
    build = build_under_test(args.baseline)
    with contextmanager(running)(Harness, "trace") as harness:
        bench = Bench(harness, start_internet(harness), build)
        bench.destroy_after(bench.create, "warmup")
        bench.config("traced")
        config = str(harness.shared / "traced.yaml")
        ca = str(bench.internet.ca_pem)
        if args.idle:
            idle(bench, args.idle, 60)
            return 0
        if args.timed:
            others = [f"beside{i}" for i in range(args.many)]
            for name in others:
                bench.create(name)
            for _ in range(2):  # the second pass is the one to read: nothing is cold
                since = harness_now(bench)
                timed(bench, "cage", "create", "-c", config, "--upstream-ca", ca)
                journal(bench, "traced", since)
                timed(bench, "cage", "list")
                timed(bench, "cage", "verify", "traced")
                memory(bench, "traced")
                since = harness_now(bench)
                timed(bench, "cage", "destroy", "traced", "-y")
                journal(bench, "traced", since)
            for name in others:
                bench.destroy(name)
            return 0
        traced(bench, "cage", "create", "-c", config, "--upstream-ca", ca)
        traced(bench, "cage", "list")
        bench.until_verified("traced")
        traced(bench, "cage", "verify", "traced")
        traced(bench, "cage", "status", "traced")
        traced(bench, "cage", "destroy", "traced", "-y")
    return 0


if __name__ == "__main__":
    sys.exit(main())
