"""A request on a new connection through a real cage, against one from its proxy container.

    flock /work/e2e.lock .venv/bin/python -m bench.cages.new_connections [--count 300] [--rounds 3]
        [--baseline REF]

Issue 19's figure as the issue measured it: "request through the cage vs from the proxy
container directly". `bench/proxy/reconnect.py` times the same on loopback, with no
container network in between; this one starts the systemd harness and the fake internet
as `bench.cages` does, creates one cage (a `sleep infinity` agent, github.com allowed)
and runs one stdlib client, a new TCP connection, TLS and one GET of github.com each
time, in turns:

* explicit: in the agent, through `HTTPS_PROXY` (a CONNECT), trusting the cage's CA;
* transparent: in the agent, straight to github.com:443, the address the DNS sidecar
  gives for it (the proxy's listener), trusting the cage's CA;
* direct: in the proxy container, straight to the fake internet's address, SNI
  github.com, trusting the fake internet's CA.

Each client connects by address (the name is looked up once, before the loop), so no
contender pays a DNS lookup per request. Prints p50 and p90 of `--count` requests after
20 unmeasured ones, per round, and each path's p50 over the direct one's. Speed is
reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from contextlib import contextmanager

from bench.cages.run import Bench, build_under_test
from tests.e2e.harness import Harness, running, start_internet

NAME = "reconnect"
AGENT = f"agentcage-{NAME}-agent"
PROXY = f"agentcage-{NAME}-proxy"
PROXY_PYTHON = "/opt/agentcage/bin/python3"
WARMUP = 20

# Runs inside the containers: the standard library only.
CLIENT = r"""
import json, os, socket, ssl, sys, time
from urllib.parse import urlsplit

HOST = "github.com"
mode, count = sys.argv[1], int(sys.argv[2])
if mode == "direct":
    address, context = sys.argv[3], ssl.create_default_context(cadata=sys.argv[4])
else:
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    proxy = urlsplit(os.environ["HTTPS_PROXY"])
    address = socket.gethostbyname(HOST)


def answer(sock, head_only):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"closed early: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise SystemExit(f"not 200: {head!r}")
    if head_only:
        return
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    if b"content-length" in fields:
        while len(body) < int(fields[b"content-length"]):
            body += sock.recv(65536)
    elif fields.get(b"transfer-encoding") == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            body += sock.recv(65536)
    else:
        raise SystemExit(f"no length: {head!r}")


times = []
for i in range(count + WARMUP):
    start = time.perf_counter()
    if mode == "explicit":
        sock = socket.create_connection((proxy.hostname, proxy.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
        answer(sock, True)
    else:
        sock = socket.create_connection((address, 443))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tls = context.wrap_socket(sock, server_hostname=HOST)
    tls.sendall(f"GET /bench HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    answer(tls, False)
    tls.close()
    if i >= WARMUP:
        times.append(time.perf_counter() - start)
print(json.dumps(times))
""".replace("WARMUP", str(WARMUP))


def timed(bench: Bench, mode: str, count: int) -> list[float]:
    if mode == "direct":
        pem = bench.internet.ca_pem.read_text()
        argv = [PROXY, PROXY_PYTHON, "-c", CLIENT, mode, str(count), bench.internet.ip, pem]
    else:
        argv = [AGENT, "python3", "-c", CLIENT, mode, str(count)]
    out = bench.harness.exec("podman", "exec", *argv, timeout=1800)
    return [float(t) for t in json.loads(out.strip().splitlines()[-1])]


def p(times: list[float], q: float) -> float:
    return sorted(times)[int(len(times) * q)] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="requests per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="REF", help="run a copy of this commit instead")
    args = parser.parse_args(argv)
    build = build_under_test(args.baseline)
    modes = ("direct", "explicit", "transparent")
    with contextmanager(running)(Harness, "reconnect") as harness:
        bench = Bench(harness, start_internet(harness), build)
        bench.create(NAME)
        bench.until_verified(NAME)
        medians: dict[str, list[float]] = {mode: [] for mode in modes}
        try:
            for round_ in range(1, args.rounds + 1):
                load = os.getloadavg()[0]
                print(f"round {round_} (load average {load:.2f})", flush=True)
                p50s = {}
                for mode in modes:
                    times = timed(bench, mode, args.count)
                    p50s[mode] = p(times, 0.5)
                    medians[mode].append(p50s[mode])
                    print(f"  {mode:<12} p50 {p50s[mode]:6.2f} ms  p90 {p(times, 0.9):6.2f} ms")
                for mode in modes[1:]:
                    print(f"  {mode:<12} {p50s[mode] / p50s['direct']:.2f}x direct")
        finally:
            bench.destroy(NAME)
    print("over the rounds, median of the p50s:")
    direct = statistics.median(medians["direct"])
    for mode in modes:
        mid = statistics.median(medians[mode])
        print(f"  {mode:<12} {mid:6.2f} ms  {mid / direct:.2f}x direct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
