"""Load test of audit rotation: 10,000 requests through a real proxy rotating every 1 MiB.

Run: .venv/bin/python bench/audit/rotation.py [--requests N] [--clients N]
A recording HTTPS upstream runs in its own process; `agentcage proxy run` runs with
`logging.audit_max_bytes: 1MiB` and a keep count large enough to hold every file.
`--clients` threads (default 16), each with its own keep-alive connection, send
GET /load/<n> for every n once, plus one blocked request in twenty. Then every
file of the log is read and the run fails (exit 1) unless each request has exactly
one decision line (`kind: http`) and each allowed one exactly one `response` line,
every line parses (none torn), and no file passes 1 MiB. This checks correctness
under load; the time it takes is printed, not judged.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import ssl
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.proxy import contenders  # noqa: E402
from tests.support.proxy import ProxyProcess  # noqa: E402

from agentcage.audit.logfiles import generations  # noqa: E402

MAX_BYTES = 1024 * 1024
BLOCK_EVERY = 20  # one request in twenty goes to a host off the allowlist


def write_config(path: Path, port: int) -> Path:
    """The proxy bench's cage (127.0.0.1:`port` allowed), rotating its audit log every 1 MiB."""
    contenders.write_config(path, hosts=("127.0.0.1",), port=port)
    # Its `logging:` section comes last, so these keys join it.
    with path.open("a") as config:
        config.write(f"  audit_max_bytes: {MAX_BYTES}\n  audit_keep: 1000\n")
    return path


def send_all(proxy: ProxyProcess, tls_port: int, requests: int, clients: int) -> Counter[int]:
    verify = ssl.create_default_context(cafile=str(proxy.ca_cert))
    statuses: Counter[int] = Counter()

    def worker(offset: int) -> Counter[int]:
        seen: Counter[int] = Counter()
        with httpx.Client(proxy=proxy.url, verify=verify, timeout=30) as http:
            for n in range(offset, requests, clients):
                # An IP literal off the allowlist is refused by the domain inspector.
                host = "127.0.0.2" if n % BLOCK_EVERY == 0 else "127.0.0.1"
                seen[http.get(f"https://{host}:{tls_port}/load/{n}").status_code] += 1
        return seen

    with ThreadPoolExecutor(clients) as pool:
        for seen in pool.map(worker, range(clients)):
            statuses.update(seen)
    return statuses


def check(audit: Path, requests: int) -> list[str]:
    """What is wrong with the log's files, if anything."""
    files = generations(audit)
    problems = [
        f"{p.name} is {p.stat().st_size} bytes" for p in files if p.stat().st_size > MAX_BYTES
    ]
    decisions: Counter[str] = Counter()
    closings: Counter[str] = Counter()
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError:
                problems.append(f"{path.name}:{number}: not a whole JSON line")
                continue
            if not record["path"].startswith("/load/"):
                continue
            if record["kind"] == "http":
                decisions[record["path"]] += 1
            elif record["kind"] == "response":
                closings[record["path"]] += 1
    for n in range(requests):
        path = f"/load/{n}"
        if decisions[path] != 1:
            problems.append(f"{path}: {decisions[path]} decision lines")
        wanted = 0 if n % BLOCK_EVERY == 0 else 1
        if closings[path] != wanted:
            problems.append(f"{path}: {closings[path]} response lines, expected {wanted}")
    print(f"{len(files)} files, {sum(decisions.values())} decision lines, "
          f"{sum(closings.values())} response lines")  # fmt: skip
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    stop = multiprocessing.Event()
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    upstream = contenders.serve_upstream
    server = multiprocessing.Process(
        target=upstream, args=(ready, stop, "127.0.0.1", (0, 0)), daemon=True
    )
    server.start()
    tls_port, upstream_ca = ready.get(timeout=30)
    with tempfile.TemporaryDirectory(prefix="agentcage-bench-") as tmp:
        work = Path(tmp)
        proxy = ProxyProcess(
            write_config(work / "config.yaml", tls_port), work, upstream_ca=Path(upstream_ca)
        )
        proxy.start()
        started = time.monotonic()
        try:
            statuses = send_all(proxy, tls_port, args.requests, args.clients)
        finally:
            code = proxy.stop()
            stop.set()
        took = time.monotonic() - started
        print(f"{args.requests} requests in {took:.1f} s ({args.requests / took:.0f}/s): "
              f"{dict(sorted(statuses.items()))}; proxy exit {code}")  # fmt: skip
        problems = check(proxy.audit_path, args.requests)
    blocked = (args.requests + BLOCK_EVERY - 1) // BLOCK_EVERY
    if statuses != Counter({200: args.requests - blocked, 403: blocked}) or code != 0:
        problems.append("unexpected statuses or proxy exit")
    for problem in problems[:20]:
        print(f"FAIL {problem}")
    print("FAIL" if problems else "OK: every request has exactly one decision line")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
