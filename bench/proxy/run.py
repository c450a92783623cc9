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
import json
import multiprocessing
import os
import random
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.proxy import ProxyProcess  # noqa: E402

SIZES = {"1 KiB": 1024, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
# (keep-alive count, new-connection count) per size: bounded so a run takes ~1 min.
COUNTS = {"1 KiB": (1000, 150), "64 KiB": (600, 100), "1 MiB": (80, 30)}
ROUNDS = 5
TARGETS = {"1 KiB": 1.15, "64 KiB": 1.15, "1 MiB": 1.3}
TRANSPARENT_TARGET = 1.1
ORIGIN = "127.0.0.3"  # the upstream, on 443 as the transparent path requires
STEER = "127.0.0.2"  # the proxy's transparent listeners
NAME = "bench.local"
BENCH_SECRET = "bench-secret-value-0123456789abcdef"
# What httpx sends, so the in-process policy measurement sees the proxy's input.
CLIENT_HEADERS = (
    ("host", "127.0.0.1"),
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate"),
    ("connection", "keep-alive"),
    ("user-agent", "python-httpx"),
)
WORDS = [
    "the",
    "agent",
    "reads",
    "a",
    "file",
    "and",
    "then",
    "writes",
    "a",
    "summary",
    "of",
    "the",
    "tool",
    "call",
    "results",
    "with",
    "paths",
    "like",
    "/src/app/main.py",
    "and",
    "numbers",
    "12345",
    "67890",
    "while",
    "the",
    "user",
    "asks",
    "for",
    "more",
    "detail",
]


def body(size: int) -> bytes:
    rng = random.Random(size)
    messages, total = [], 0
    while total < size:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
        messages.append({"role": rng.choice(["user", "assistant"]), "content": text})
        total += len(text) + 40
    return json.dumps({"model": "bench", "messages": messages}).encode()[:size]


def _serve_upstream(
    ready: multiprocessing.Queue,  # type: ignore[type-arg]
    stop: multiprocessing.Event,  # type: ignore[valid-type]
    host: str = ORIGIN,
    ports: tuple[int, int] = (443, 80),
) -> None:
    import trustme
    from tests.support.upstream import Upstream

    # The explicit modes ask for the address itself; its certificate must name it.
    with Upstream(trustme.CA(), [NAME, host], address=host, ports=ports) as upstream:
        ready.put((upstream.tls_port, str(upstream.ca_pem)))
        stop.wait()


@dataclass
class Mode:
    name: str
    proxy_url: str | None
    verify: ssl.SSLContext
    pid: int | None = None  # the proxy process, whose CPU time is counted
    url: str = f"https://{ORIGIN}/reflect"


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of a process (all its threads), from /proc."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mitmdump(workdir: Path, upstream_ca: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [
        str(Path(sys.executable).with_name("mitmdump")),
        "-q",
        "--listen-host", "127.0.0.1",
        "--listen-port", str(port),
        "--set", f"confdir={workdir / 'mitm-ca'}",
        "--set", f"ssl_verify_upstream_trusted_ca={upstream_ca}",
        "--set", "connection_strategy=lazy",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            ca = workdir / "mitm-ca" / "mitmproxy-ca-cert.pem"
            if ca.exists():
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mitmdump did not start")


def write_config(
    path: Path, *, dns: str | None = None, hosts: tuple[str, ...] = (ORIGIN, NAME), port: int = 443
) -> Path:
    """The bench cage: `hosts` allowed (on `port` too, when it is not 443)."""
    resolver = f'dns_servers: ["{dns}"]' if dns else ""
    ports = ", ".join(f"{{host: '{host}', port: {port}}}" for host in hosts if port != 443)
    path.write_text(
        f"""
name: bench
container: {{image: docker.io/library/python:3.12-slim}}
secret_injection:
  - env: BENCH_API_KEY
    inject_to: [api.example.com]
domains:
  allow: [{", ".join(hosts)}]
{resolver}
network:
  allow_cidrs: [127.0.0.0/8]
  ports: [{ports}]
rate_limit: false
logging:
  allowed_requests: true
"""
    )
    return path


def context(ca: Path | str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


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
    server = multiprocessing.Process(target=_serve_upstream, args=(ready, stop), daemon=True)
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


def policy_costs(config: Path) -> dict[str, float]:
    """Milliseconds per request the policy engine itself spends, measured in-process.

    check_request on the request plus scrub on the reflected body: the part of
    agentcage's time per request that the proxy code cannot remove.
    """
    import os

    from agentcage.policy.types import Headers, Request
    from agentcage.proxy.runtime import Sources, build_runtime

    os.environ.setdefault("BENCH_API_KEY", BENCH_SECRET)
    policy = build_runtime(Sources(config)).policy
    costs: dict[str, float] = {}
    for size_name, size in SIZES.items():
        payload = body(size)
        # A fresh Request and body per round: the engine memoizes work on the last
        # request and payload objects, which a proxy never hands it twice.
        requests = [
            Request(
                method="POST",
                scheme="https",
                host="127.0.0.1",
                port=443,
                path="/reflect",
                headers=Headers((*CLIENT_HEADERS, ("content-length", str(size)))),
                body=bytes(memoryview(payload)),
                flow_id=f"bench-{n}",
                client="127.0.0.1:1",
            )
            for n in range(max(5, COUNTS[size_name][0] // 4) + 1)
        ]
        policy.check_request(requests.pop())
        start = time.perf_counter()
        for request in requests:
            policy.check_request(request)
            policy.scrub(payload)
        rounds = len(requests)
        costs[size_name] = (time.perf_counter() - start) / rounds * 1000
    return costs


def report_split(
    results: dict[tuple[str, str, str], list[float]], policy_ms: dict[str, float]
) -> None:
    print()
    print("keep-alive: where agentcage's extra time per request goes (mean, ms):")
    for size in SIZES:
        full = statistics.mean(results[("agentcage", size, "keep-alive")]) * 1000
        bare = statistics.mean(results[("mitmdump", size, "keep-alive")]) * 1000
        extra = full - bare
        print(
            f"  {size:<7} extra {extra:6.2f}  policy engine {policy_ms[size]:6.2f}"
            f"  proxy code and noise {extra - policy_ms[size]:6.2f}"
            f"  (target allows {bare * (TARGETS[size] - 1):5.2f})"
        )


def report_cpu(cpu: dict[tuple[str, str, str], tuple[float, int]]) -> None:
    """CPU per request of each proxy process: what wall time becomes on a busy machine."""
    print()
    print("proxy process CPU per request (ms; 10 ms clock ticks, so rough at small sizes):")
    for size in SIZES:
        for conn in ("keep-alive", "new TLS"):
            ours = cpu[("agentcage", size, conn)]
            bare = cpu[("mitmdump", size, conn)]
            ours_ms, bare_ms = ours[0] / ours[1] * 1000, bare[0] / bare[1] * 1000
            ratio = ours_ms / bare_ms if bare_ms else float("nan")
            print(
                f"  {size:<7} {conn:<11} agentcage {ours_ms:6.2f}  mitmdump {bare_ms:6.2f}"
                f"  ratio {ratio:4.2f}x"
            )


def compared(
    results: dict[tuple[str, str, str], list[float]], key: tuple[str, str, str], other: str
) -> tuple[float, float]:
    """(mean, p50) time per request of `key` over that of mode `other` for the same case."""
    ours, theirs = results[key], results[(other, *key[1:])]
    return (
        statistics.mean(ours) / statistics.mean(theirs),
        statistics.median(ours) / statistics.median(theirs),
    )


def report_transparent(results: dict[tuple[str, str, str], list[float]]) -> None:
    print()
    print("transparent path vs explicit proxy (mean time per request; p50 in brackets):")
    for size in SIZES:
        for conn in ("keep-alive", "new TLS"):
            ratio, p50 = compared(results, ("transparent", size, conn), "agentcage")
            verdict = "ok" if ratio <= TRANSPARENT_TARGET else f"OVER {TRANSPARENT_TARGET}x target"
            shown = f"transparent/explicit {ratio:5.2f}x ({p50:4.2f}x)"
            print(f"  {size:<7} {conn:<11} {shown}  [{verdict}]")


def report(results: dict[tuple[str, str, str], list[float]]) -> None:
    head = ("mode", "body", "connection", "n", "req/s", "p50 ms", "p99 ms")
    print("{:<11} {:<7} {:<11} {:>5} {:>8} {:>8} {:>8}".format(*head))
    for (mode, size, conn), times in results.items():
        ordered = sorted(times)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = len(times) / sum(times)
        print(
            f"{mode:<11} {size:<7} {conn:<11} {len(times):>5} {rate:>8.1f} {p50:>8.2f} {p99:>8.2f}"
        )
    print()
    print("ratios of mean time per request (p50 ratio in brackets):")
    for size in SIZES:
        for conn in ("keep-alive", "new TLS"):
            vs_bare, p50_bare = compared(results, ("agentcage", size, conn), "mitmdump")
            vs_direct = compared(results, ("agentcage", size, conn), "direct")[0]
            verdict = "ok" if vs_bare <= TARGETS[size] else f"OVER {TARGETS[size]}x target"
            print(
                f"  {size:<7} {conn:<11} agentcage/mitmdump {vs_bare:5.2f}x ({p50_bare:4.2f}x)"
                f"  agentcage/direct {vs_direct:5.2f}x  [{verdict}]"
            )


if __name__ == "__main__":
    main()
