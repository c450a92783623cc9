"""What the proxy bench sends: JSON-like chat bodies of fixed sizes, the same bytes each run."""

from __future__ import annotations

import json
import random

SIZES = {"1 KiB": 1024, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
# (keep-alive count, new-connection count) per size: bounded so a run takes ~1 min.
COUNTS = {"1 KiB": (1000, 150), "64 KiB": (600, 100), "1 MiB": (80, 30)}
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
