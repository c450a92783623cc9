"""Time per request through the full agentcage proxy, bare mitmdump, and direct.

Run: .venv/bin/python bench/proxy/run.py [--quick]   (as root: it makes a network and
mount namespace of its own, tests/support/netns.py, and re-runs itself inside)
Everything is on loopback: a recording HTTPS upstream on 127.0.0.3:443 (HTTP/1.1, in its
own process), `agentcage proxy run` with the full inspector chain, and `mitmdump` with
the same connection settings and no addons. "transparent" is agentcage again, reached
the way a program that ignores proxy settings reaches it (docs/transparent.md): a
private /etc/hosts says bench.local is the transparent listener 127.0.0.2, and the
proxy resolves bench.local to the upstream through a fake DNS.
Each request POSTs a JSON-like body of 1 KiB, 64 KiB or 1 MiB to /reflect, which
answers the same bytes, so the proxy inspects the request and scrubs a response of
that size.
"keep-alive" reuses one client connection; "new TLS" opens a new client connection
(CONNECT + TLS, or only TLS on the transparent path) per request. Prints req/s, p50
and p99 per request, then the ratios. The four modes take turns in rounds (a different
one first each round), so that drift on a shared machine falls on all of them alike
rather than on whichever ran during it.
Targets: full chain <= 1.15x bare mitmdump's time per request at 1 KiB and 64 KiB,
<= 1.3x at 1 MiB; transparent <= 1.1x the explicit path. Speed is reported, not asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.proxy.contenders import (  # noqa: E402
    BENCH_SECRET,
    NAME,
    ORIGIN,
    STEER,
    Mode,
    context,
    serve_upstream,
    start_mitmdump,
    write_config,
)
from bench.proxy.engine_cost import policy_costs  # noqa: E402
from bench.proxy.payloads import COUNTS, SIZES, body  # noqa: E402
from bench.proxy.tables import report, report_cpu, report_split, report_transparent  # noqa: E402
from tests.support.proxy import ProxyProcess  # noqa: E402

ROUNDS = 5


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of a process (all its threads), from /proc."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_requests(
    mode: Mode, payload: bytes, count: int, keep_alive: bool, warmup: int = 0
) -> list[float]:
    """Times of `count` requests, after `warmup` untimed ones (on the same connection
    when `keep_alive`, so its CONNECT and handshake are not timed)."""
    times: list[float] = []

    def client() -> httpx.Client:
        return httpx.Client(proxy=mode.proxy_url, verify=mode.verify, timeout=30)

    shared = client() if keep_alive else None
    try:
        for _ in range(warmup + count):
            start = time.perf_counter()
            if shared is not None:
                response = shared.post(mode.url, content=payload)
            else:
                with client() as fresh:
                    response = fresh.post(mode.url, content=payload)
            times.append(time.perf_counter() - start)
            if response.status_code != 200 or len(response.content) != len(payload):
                raise RuntimeError(f"{mode.name}: bad response {response.status_code}")
    finally:
        if shared is not None:
            shared.close()
    return times[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:
        from tests.support.netns import isolated

        argv = [sys.executable, __file__, "--inside", *(["--quick"] if args.quick else [])]
        sys.exit(subprocess.run(isolated(argv, private_mounts=True), cwd=ROOT).returncode)
    scale = 0.1 if args.quick else 1.0
    from tests.support.fake_dns import FakeDns

    with (
        tempfile.NamedTemporaryFile("w", suffix=".hosts") as hosts,
        FakeDns({NAME: [ORIGIN]}) as dns,
    ):
        hosts.write(f"127.0.0.1 localhost\n{STEER} {NAME}\n")
        hosts.flush()
        subprocess.run(["mount", "--bind", hosts.name, "/etc/hosts"], check=True)
        measure(scale, dns.address)


def measure(scale: float, dns: str) -> None:
    stop = multiprocessing.Event()
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=serve_upstream, args=(ready, stop), daemon=True)
    server.start()
    _, upstream_ca = ready.get(timeout=30)

    with tempfile.TemporaryDirectory(prefix="agentcage-bench-") as tmp:
        work = Path(tmp)
        agentcage = ProxyProcess(
            write_config(work / "config.yaml", dns=dns),
            work,
            upstream_ca=Path(upstream_ca),
            env={"BENCH_API_KEY": BENCH_SECRET},
            extra_args=["--transparent", STEER],
        ).start()
        mitm, mitm_port = start_mitmdump(work, upstream_ca)
        mitm_ca = work / "mitm-ca" / "mitmproxy-ca-cert.pem"
        modes = [
            Mode("agentcage", agentcage.url, context(agentcage.ca_cert), agentcage.pid),
            Mode("mitmdump", f"http://127.0.0.1:{mitm_port}", context(mitm_ca), mitm.pid),
            Mode("direct", None, context(upstream_ca)),
            Mode(
                "transparent",
                None,
                context(agentcage.ca_cert),
                agentcage.pid,
                url=f"https://{NAME}/reflect",
            ),
        ]
        results: dict[tuple[str, str, str], list[float]] = {}
        # CPU seconds the proxy process spent, and requests it served (warm-ups too).
        cpu: dict[tuple[str, str, str], tuple[float, int]] = {}
        try:
            for size_name, size in SIZES.items():
                payload = body(size)
                for keep_alive, count in zip((True, False), COUNTS[size_name], strict=True):
                    conn = "keep-alive" if keep_alive else "new TLS"
                    per_round = max(2, int(count * scale) // ROUNDS)
                    for turn in range(ROUNDS):
                        first = turn % len(modes)
                        for mode in modes[first:] + modes[:first]:
                            before = cpu_seconds(mode.pid)
                            times = run_requests(mode, payload, per_round, keep_alive, warmup=2)
                            key = (mode.name, size_name, conn)
                            results.setdefault(key, []).extend(times)
                            spent = cpu.get(key, (0.0, 0))
                            used = cpu_seconds(mode.pid) - before
                            cpu[key] = (spent[0] + used, spent[1] + per_round + 2)
        finally:
            agentcage.stop()
            mitm.send_signal(signal.SIGTERM)
            mitm.wait(10)
            stop.set()
            server.join(10)
        policy_ms = policy_costs(work / "config.yaml")
    report(results)
    report_transparent(results)
    report_split(results, policy_ms)
    report_cpu(cpu)


if __name__ == "__main__":
    main()
