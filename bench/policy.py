"""Throughput of `Policy.check_request` on JSON text and binary bodies.

Run: .venv/bin/python bench/policy.py
Prints MB/s per body kind and size (JSON text, JSON with a base64 screenshot, a
package-lock.json, random binary), then where the time goes per inspector. The
target is >= 50 MB/s on 1 MiB text bodies; a lockfile, tens of thousands of short
base64 and hex runs, is the slowest everyday body (docs/detection.md, Known limits).
No assertions: speed is reported, not tested.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import random
import time

from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
from agentcage.policy.engine import Policy
from agentcage.policy.types import Headers, Request

SIZES = {"1 KiB": 1024, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
SENTENCE = (
    "the agent reads a file and then writes a summary of the function call results with "
    "several tool outputs including paths like /src/app/main.py and numbers 12345 67890"
)
WORDS = SENTENCE.split(" ")


def json_body(size: int, rng: random.Random) -> bytes:
    messages = []
    total = 0
    while total < size:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
        messages.append({"role": rng.choice(["user", "assistant"]), "content": text})
        total += len(text) + 40
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": messages})
    return body.encode()[:size]


def image_body(size: int) -> bytes:
    """An LLM request carrying a base64 PNG screenshot, the heaviest everyday request."""
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(max(0, size * 3 // 4 - 200))
    content = [
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/png",
                "data": base64.b64encode(png).decode(),
            },
        },
        {"type": "text", "text": "What is on this screen?"},
    ]
    messages = [{"role": "user", "content": content}]
    return json.dumps({"model": "claude-sonnet-4-5", "messages": messages}).encode()


def make_policy() -> Policy:
    config = CageConfig.model_validate(
        {
            "name": "bench",
            "container": {"image": "docker.io/library/python:3.12-slim"},
            "domains": {"allow": ["anthropic.com"]},
            "secret_injection": [{"env": "ANTHROPIC_API_KEY", "inject_to": ["anthropic.com"]}],
            "max_request_body": "64MiB",
            "rate_limit": False,
        },
        context=LoadContext(check_paths=False),
    )
    return Policy.from_config(config, {"ANTHROPIC_API_KEY": "sk-ant-api03-" + "x" * 90})


def lockfile_body(size: int, rng: random.Random) -> bytes:
    """A package-lock.json (v3) of about `size` bytes: paths, versions, tarball URLs and
    `sha512-` integrity hashes, as an agent uploads one or an LLM conversation carries it."""
    packages: dict[str, dict[str, object]] = {"": {"name": "app", "version": "1.0.0"}}
    total = 0
    while total < size:
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
        version = f"{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}"
        digest = hashlib.sha512(f"{name}{total}".encode()).digest()
        entry = {
            "version": version,
            "resolved": f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz",
            "integrity": "sha512-" + base64.b64encode(digest).decode(),
            "dev": rng.random() < 0.5,
        }
        packages[f"node_modules/{name}-{total}"] = entry
        total += len(json.dumps(entry, indent=2)) + len(name) + 30
    lock = {"name": "app", "lockfileVersion": 3, "requires": True, "packages": packages}
    return json.dumps(lock, indent=2).encode()[:size]


def measure(policy: Policy, request: Request, size: int) -> float:
    runs = max(3, min(2000, (32 * 1024 * 1024) // size))
    policy.check_request(request)  # warm caches
    start = time.perf_counter()
    for _ in range(runs):
        # Fresh objects each time: the engine caches work per request and body object.
        fresh = dataclasses.replace(request, body=bytes(memoryview(request.body)))
        policy.check_request(fresh)
    elapsed = time.perf_counter() - start
    return size * runs / elapsed / 1e6


def breakdown(policy: Policy, request: Request, runs: int = 10) -> None:
    """Mean time per inspector, in chain order (the first body reader pays for decoding)."""
    totals = {inspector.name: 0.0 for inspector in policy.chain.inspectors}
    for _ in range(runs):
        fresh = dataclasses.replace(request, body=bytes(memoryview(request.body)))
        for inspector in policy.chain.inspectors:
            hook = getattr(inspector, "inspect_request", None)
            if hook is None:
                continue
            start = time.perf_counter()
            hook(fresh)
            totals[inspector.name] += time.perf_counter() - start
    for name, total in totals.items():
        print(f"  {name:<18} {total / runs * 1000:8.2f} ms")


def main() -> None:
    rng = random.Random(7)
    policy = make_policy()
    last: dict[str, Request] = {}
    print(f"{'body':<8} {'size':>7} {'MB/s':>9} {'verdict':>8}")
    for kind in ("json", "image", "lockfile", "binary"):
        for label, size in SIZES.items():
            if kind == "json":
                body, ctype = json_body(size, rng), "application/json"
            elif kind == "image":
                body, ctype = image_body(size), "application/json"
            elif kind == "lockfile":
                body, ctype = lockfile_body(size, rng), "application/json"
            else:
                body, ctype = os.urandom(size), "application/octet-stream"
            headers = Headers((("content-type", ctype), ("x-api-key", "{{ANTHROPIC_API_KEY}}")))
            request = Request(
                "POST", "https", "api.anthropic.com", 443, "/v1/messages", headers, body
            )
            verdict = policy.check_request(request).verdict.value
            print(f"{kind:<8} {label:>7} {measure(policy, request, size):>9.1f} {verdict:>8}")
            if label == "1 MiB":
                last[kind] = request
    for kind, request in last.items():
        print(f"per inspector, 1 MiB {kind} body:")
        breakdown(policy, request)


if __name__ == "__main__":
    main()
