"""`python -m agentcage.dns.config_check FILE`: validate a cage's config for `dns run`.

Run by the DNS sidecar (plan.py) in a process of its own, so the schema's memory leaves
with it. Prints one JSON line: `plan_json`'s versioned object for a valid config,
`{"error": {...}}` with the `AgentcageError`'s class, message, hint and exit code
otherwise (the sidecar raises it again, word for word).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agentcage.child_check import error_answer
from agentcage.config import load_config, policy_version
from agentcage.dns.plan import DnsPlan, plan_json
from agentcage.errors import AgentcageError


def answer(path: Path, *, shown_as: Path | None = None) -> bytes:
    """What the check of `path` prints. `shown_as`: the path the sidecar reads the same
    bytes at, if not `path` (config/load.py): the answer is then the one it would get,
    with its upstream servers this process's if the config names none (checked_ahead.py)."""
    version = policy_version(path)  # first: never newer than what is loaded
    try:
        text = plan_json(version, DnsPlan.of(load_config(path, shown_as=shown_as)))
    except AgentcageError as exc:
        text = json.dumps({"error": error_answer(exc)})
    return f"{text}\n".encode()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m agentcage.dns.config_check FILE", file=sys.stderr)
        return 64
    sys.stdout.buffer.write(answer(Path(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
