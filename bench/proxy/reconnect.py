"""A GET on a new client connection each time, as Debian's npm 9 sends them, through
agentcage, bare mitmdump and directly; optionally with the upstream a round trip away.
"transparent" is the same agentcage proxy reached as a cage's program that ignores
proxy settings reaches it (docs/transparent.md): TLS straight to its transparent
listener, SNI and Host naming the upstream, no CONNECT.

Run: .venv/bin/python bench/proxy/reconnect.py [--rtt MS] [--before SRC]... [--count N]
(as root: it makes a network and mount namespace of its own, like run.py).
Each request opens a new client connection (CONNECT and TLS through a proxy, TLS
directly) and GETs 1 KiB from bench.local. `--rtt MS` puts a relay in front of the
upstream that holds every chunk MS/2 ms in each direction (this machine's kernel has no
netem), so each TCP or TLS round trip to the upstream costs MS ms; the agent and the
proxy stay on loopback, as in a cage. Each `agentcage proxy run` gets the CA a cage
gets (`cage/ca.py`, EC P-256), not the RSA 2048 one mitmproxy makes in an empty
directory; bare mitmdump keeps its own. `--before SRC` adds `agentcage proxy run` from
another source tree (e.g. `git archive <commit> src | tar -x -C /tmp/before`; copy the
built `_native*.so` in too) as a fourth contender, for before/after figures. `--before`
may be given several times (one contender each, named after its directory, all taking
turns): a copy of this very tree among them shows how far two identical proxies differ
on this machine, the noise any before/after difference must clear.
`--raw` sends the same requests from a plain-socket client instead of httpx and also
prints how long each step took (TCP connect, CONNECT answered, TLS handshake, GET
answered); `--resume` (implies `--raw`) makes every client offer the TLS session of its
last connection, as Node's https agent does (httpx never does): the handshakes are then
abbreviated on both sides.
Prints p50 and p90 per request, the ratios, and each proxy's CPU time per request
(user + system, all threads); speed is reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.proxy.contenders import (  # noqa: E402
    NAME,
    ORIGIN,
    STEER,
    Mode,
    context,
    serve_upstream,
    start_mitmdump,
    write_config,
)
from bench.proxy.run import cpu_seconds  # noqa: E402
from tests.support.proxy import ProxyProcess  # noqa: E402

from agentcage.cage.ca import CERT, ensure_ca  # noqa: E402

RELAY = "127.0.0.4"
ROUNDS = 5


def relay(ready: multiprocessing.Queue, delay: float) -> None:  # type: ignore[type-arg]
    """RELAY:443 -> ORIGIN:443, every chunk held `delay` seconds (order kept)."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while chunk := await reader.read(65536):
            loop.call_later(delay, writer.write, chunk)
        loop.call_later(delay, writer.close)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(ORIGIN, 443)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main() -> None:
        server = await asyncio.start_server(serve, RELAY, 443)
        ready.put(True)
        await server.serve_forever()

    asyncio.run(main())


def timed_gets(mode: Mode, count: int) -> list[float]:
    times = []
    url, headers, extensions = httpx.URL(mode.url), {}, {}
    if mode.address is not None:
        headers = {"host": url.host}
        extensions = {"sni_hostname": url.host}
        url = url.copy_with(host=mode.address)
    for _ in range(count):
        start = time.perf_counter()
        with httpx.Client(proxy=mode.proxy_url, verify=mode.verify, timeout=30) as client:
            response = client.get(url, headers=headers, extensions=extensions)
        times.append(time.perf_counter() - start)
        if response.status_code != 200 or len(response.content) != 1024:
            raise RuntimeError(f"{mode.name}: bad response {response.status_code}")
    return times


STEPS = ("tcp", "connect", "tls", "get")


class RawClient:
    """GETs on a new connection each time from plain sockets, each step timed; offering
    the last TLS session if `resume`."""

    def __init__(self, resume: bool) -> None:
        self.resume = resume
        self.sessions: dict[str, ssl.SSLSession | None] = {}
        self.resumed = 0
        self.steps: dict[str, list[tuple[float, ...]]] = {}

    def timed_gets(self, mode: Mode, count: int) -> list[float]:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            body = self._get(mode)
            times.append(time.perf_counter() - start)
            if len(body) != 1024:
                raise RuntimeError(f"{mode.name}: bad response body ({len(body)} bytes)")
        return times

    def _get(self, mode: Mode) -> bytes:
        url = httpx.URL(mode.url)
        port = url.port or 443
        marks = [time.perf_counter()]
        if mode.proxy_url is None:
            sock = socket.create_connection((mode.address or url.host, port))
            marks.append(time.perf_counter())
        else:
            proxy = httpx.URL(mode.proxy_url)
            sock = socket.create_connection((proxy.host, proxy.port or 80))
            marks.append(time.perf_counter())
            sock.sendall(f"CONNECT {url.host}:{port} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
        marks.append(time.perf_counter())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = self.sessions.get(mode.name) if self.resume else None
        with mode.verify.wrap_socket(sock, server_hostname=url.host, session=session) as tls:
            marks.append(time.perf_counter())
            # No `Connection: close`: that would keep the request from the proxy's pool.
            tls.sendall(
                f"GET {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode()
            )
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += tls.recv(65536)
            head, _, body = answer.partition(b"\r\n\r\n")
            length = int(httpx.Headers(_fields(head)).get("content-length", "0"))
            while len(body) < length:
                body += tls.recv(65536)
            marks.append(time.perf_counter())
            self.resumed += tls.session_reused
            self.sessions[mode.name] = tls.session
        steps = tuple(b - a for a, b in itertools.pairwise(marks))
        self.steps.setdefault(mode.name, []).append(steps)
        return body

    def report(self) -> None:
        print("  each step, p50 (ms):  " + "  ".join(STEPS))
        for name, rows in self.steps.items():
            cells = "  ".join(
                f"{statistics.median(c) * 1000:5.2f}" for c in zip(*rows, strict=True)
            )
            print(f"  {name:11} {cells}")


def _fields(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(name.strip(), value.strip()) for name, _, value in (x.partition(":") for x in lines)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", type=float, default=0.0, help="round trip to the upstream, ms")
    parser.add_argument(
        "--before", type=Path, action="append", default=[], help="a source tree to compare"
    )
    parser.add_argument("--count", type=int, default=100, help="requests per contender")
    parser.add_argument("--raw", action="store_true", help="a plain-socket client, steps timed")
    parser.add_argument(
        "--resume", action="store_true", help="--raw, offering the last TLS session"
    )
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:
        from tests.support.netns import isolated

        argv = [sys.executable, __file__, "--inside", *sys.argv[1:]]
        sys.exit(subprocess.run(isolated(argv, private_mounts=True), cwd=ROOT).returncode)
    from tests.support.fake_dns import FakeDns

    target = RELAY if args.rtt > 0 else ORIGIN
    with (
        tempfile.NamedTemporaryFile("w", suffix=".hosts") as hosts,
        FakeDns({NAME: [target]}) as dns,
    ):
        hosts.write(f"127.0.0.1 localhost\n{target} {NAME}\n")
        hosts.flush()
        subprocess.run(["mount", "--bind", hosts.name, "/etc/hosts"], check=True)
        measure(args, dns.address)


def measure(args: argparse.Namespace, dns: str) -> None:
    stop = multiprocessing.Event()
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.Process(target=serve_upstream, args=(ready, stop), daemon=True)]
    procs[0].start()
    _, upstream_ca = ready.get(timeout=30)
    if args.rtt > 0:
        procs.append(
            multiprocessing.Process(target=relay, args=(ready, args.rtt / 2000), daemon=True)
        )
        procs[1].start()
        ready.get(timeout=30)
    url = f"https://{NAME}/bytes/1024"
    with tempfile.TemporaryDirectory(prefix="agentcage-bench-") as tmp:
        work = Path(tmp)
        config = write_config(work / "config.yaml", dns=dns, hosts=(NAME,))
        proxies = {
            "agentcage": ProxyProcess(
                config,
                work / "now",
                upstream_ca=Path(upstream_ca),
                extra_args=["--transparent", STEER],
            )
        }
        for tree in args.before:
            name = "before" if len(args.before) == 1 else tree.resolve().name
            if name in proxies or name in ("mitmdump", "direct", "transparent"):
                raise SystemExit(f"--before {tree}: another contender is named {name}")
            proxies[name] = ProxyProcess(
                config,
                work / f"tree-{len(proxies)}",
                upstream_ca=Path(upstream_ca),
                env={"PYTHONPATH": str(tree.resolve() / "src")},
            )
        for proc in proxies.values():
            ensure_ca("bench", proc.ca_dir, proc.ca_dir / "agent" / CERT)
            proc.start()
        mitm, mitm_port = start_mitmdump(work, upstream_ca)
        modes = [Mode(n, p.url, context(p.ca_cert), p.pid, url=url) for n, p in proxies.items()]
        now = proxies["agentcage"]
        modes.append(Mode("transparent", None, context(now.ca_cert), now.pid, url, STEER))
        mitm_ca = work / "mitm-ca" / "mitmproxy-ca-cert.pem"
        modes.append(
            Mode("mitmdump", f"http://127.0.0.1:{mitm_port}", context(mitm_ca), mitm.pid, url)
        )
        modes.append(Mode("direct", None, context(upstream_ca), url=url))
        results: dict[str, list[float]] = {m.name: [] for m in modes}
        cpu = dict.fromkeys(results, 0.0)
        raw = RawClient(args.resume)
        gets = raw.timed_gets if args.raw or args.resume else timed_gets
        try:
            for mode in modes:
                gets(mode, 3)  # warm-up: certificates minted, pools filled
            raw.resumed, raw.steps = 0, {}
            for turn in range(ROUNDS):
                first = turn % len(modes)
                for mode in modes[first:] + modes[:first]:
                    spent = cpu_seconds(mode.pid)
                    results[mode.name] += gets(mode, max(1, args.count // ROUNDS))
                    cpu[mode.name] += cpu_seconds(mode.pid) - spent
        finally:
            for proc in proxies.values():
                proc.stop()
            mitm.terminate()
            mitm.wait(10)
            stop.set()
            for p in procs:
                p.terminate()
    report(results, args.rtt)
    for mode in modes:
        if mode.pid is not None:
            per = cpu[mode.name] * 1000 / len(results[mode.name])
            print(f"  {mode.name:11} CPU {per:.2f} ms per request")
    if args.raw or args.resume:
        raw.report()
        total = sum(len(times) for times in results.values())
        print(f"  {raw.resumed} of {total} TLS sessions resumed")


def report(results: dict[str, list[float]], rtt: float) -> None:
    print(f"GET 1 KiB on a new client connection each time, upstream round trip {rtt:g} ms")
    p50 = {name: statistics.median(times) * 1000 for name, times in results.items()}
    for name, times in results.items():
        p90 = statistics.quantiles(times, n=10)[-1] * 1000
        print(f"  {name:11} p50 {p50[name]:6.2f} ms  p90 {p90:6.2f} ms  ({len(times)} requests)")
    for name in results:
        if name != "direct":
            ratios = f"{p50[name] / p50['direct']:.2f}x direct"
            if name != "mitmdump":
                ratios += f", {p50[name] / p50['mitmdump']:.2f}x mitmdump"
            print(f"  {name:11} {ratios}")


if __name__ == "__main__":
    main()
