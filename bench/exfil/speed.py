"""Throughput of the leak inspector, alone and as a share of the whole policy chain.

Run: .venv/bin/python -m bench.exfil.speed
Prints MB/s of `LeakInspector.inspect_request` per body kind and size, with 5 and
100 protected values, and the leak inspector's share of `Policy.check_request`.
No assertions: speed is reported, not tested.
"""

from __future__ import annotations

import json
import random
import string
import time

from bench.exfil.world import validate

from agentcage.policy.engine import Policy
from agentcage.policy.inspectors.leaks import LeakInspector
from agentcage.policy.types import Headers, Request

SIZES = {"1 KiB": 1024, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
TEXT = "the agent reads a file then writes a summary of tool output in /src/app.py"


def _config(count: int) -> str:
    known = "\n".join(f"    - {{env: K{i}}}" for i in range(count))
    return (
        "name: speed\ncontainer: {image: 'docker.io/library/python:3.12-slim'}\n"
        "domains: {allow: [example.com]}\nrate_limit: false\nmax_request_body: 64MiB\n"
        f"secrets:\n  known:\n{known}\n"
    )


def _body(kind: str, size: int, rng: random.Random) -> bytes:
    if kind == "binary":
        return rng.randbytes(size)
    text = " ".join(rng.choice(TEXT.split()) for _ in range(size // 4))
    return json.dumps({"messages": [{"role": "user", "content": text}]}).encode()[:size]


def _rate(check: object, body: bytes) -> float:
    runs = max(3, min(500, (16 * 1024 * 1024) // len(body)))
    start = time.perf_counter()
    for _ in range(runs):
        request = Request(
            "POST", "https", "api.example.com", 443, "/v1/x", Headers(), body, flow_id="b"
        )
        check(request)  # type: ignore[operator]
    return len(body) * runs / (time.perf_counter() - start) / 1e6


def main() -> None:
    rng = random.Random(1)
    print("values body       size  leaks MB/s  chain MB/s  leaks' share of chain time")
    for count in (5, 100):
        environ = {
            f"K{i}": "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(40))
            for i in range(count)
        }
        policy = Policy.from_config(validate(_config(count)), {}, environ=environ)
        leaks = next(i for i in policy.chain.inspectors if isinstance(i, LeakInspector))
        for kind in ("json", "binary"):
            for label, size in SIZES.items():
                body = _body(kind, size, rng)
                alone = _rate(leaks.inspect_request, body)
                chain = _rate(policy.check_request, body)
                share = chain / alone
                print(f"{count:6} {kind:7} {label:>7} {alone:11.1f} {chain:11.1f} {share:10.0%}")


if __name__ == "__main__":
    main()
