"""`python -m agentcage.dns.config_check FILE`: validate a cage's config for `dns run`.

Run by the DNS sidecar (plan.py) in a process of its own, so the schema's memory leaves
with it. Prints one JSON line: `plan_json`'s versioned object for a valid config,
`{"error": {...}}` with the `AgentcageError`'s class, message, hint and exit code
otherwise (the sidecar raises it again, word for word).
"""

from __future__ import annotations

import json
import sys

from agentcage.child_check import error_answer
from agentcage.config import load_config, policy_version
from agentcage.dns.plan import DnsPlan, plan_json
from agentcage.errors import AgentcageError


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m agentcage.dns.config_check FILE", file=sys.stderr)
        return 64
    version = policy_version(argv[0])  # first: never newer than what is loaded
    try:
        plan = DnsPlan.of(load_config(argv[0]))
    except AgentcageError as exc:
        print(json.dumps({"error": error_answer(exc)}))
        return 0
    print(plan_json(version, plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
