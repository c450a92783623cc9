"""A stand-in config check for `child_check.start_check`'s tests: `main([WHAT])` answers
as the real checks do (output, exit status) or fails the way WHAT names."""

from __future__ import annotations

import json
import os
import sys
import time

# Set by a test in its own process: a fork of it sees the value, a new Python does not.
MARKER = "as imported"


def main(argv: list[str]) -> int:
    what = argv[0]
    if what == "raise":
        raise RuntimeError("the probe's check broke")
    if what == "hang":
        time.sleep(60)
    if what == "exit 3":
        raise SystemExit(3)
    sys.stdout.write(json.dumps({"marker": MARKER, "pid": os.getpid(), "stdin": sys.stdin.read()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
