"""The policy engine's own time per request, measured in-process beside the proxy bench."""

from __future__ import annotations

import time
from pathlib import Path

from bench.proxy.contenders import BENCH_SECRET, ORIGIN
from bench.proxy.payloads import COUNTS, SIZES, body

# What httpx sends, so the in-process policy measurement sees the proxy's input: to
# the upstream the timed requests go to. (127.0.0.1, which no bench cage allows, was
# refused by `domain` before any other inspector ran.)
CLIENT_HEADERS = (
    ("host", ORIGIN),
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate"),
    ("connection", "keep-alive"),
    ("user-agent", "python-httpx"),
)


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
                host=ORIGIN,
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
