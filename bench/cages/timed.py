"""Run the agentcage CLI and print each podman/systemctl command it runs, with its wall time.

    python -m bench.cages.timed cage create -c CONFIG

With the host container's exec session (cage/exec_session.py) every command goes down
one `podman exec`, so `strace` sees a single process; this wraps the runners instead and
writes one line per command to stderr (`+START WALL argv`), then the total. Used by
`bench.cages.trace`.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

from agentcage.cage import exec_session, podman

T0 = time.monotonic()


def _timed(cls: type[Any]) -> None:
    original = cls.run

    def run(self: Any, argv: Sequence[str], **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return original(self, argv, **kwargs)
        finally:
            took = time.monotonic() - start
            line = shlex.join(argv)[:150]
            print(f"  +{start - T0:6.2f}s {took:6.2f}s  {line}", file=sys.stderr, flush=True)

    cls.run = run


def main() -> int:
    _timed(exec_session.SessionRunner)
    # The fallback of a session runner is a SubprocessRunner too: only time it when used
    # on its own (no session), so a command is not counted twice.
    _timed(podman.SubprocessRunner)
    from agentcage.cli.main import main as cli

    sys.argv = ["agentcage", *sys.argv[1:]]
    try:
        cli()
    except SystemExit as exc:
        print(f"  total {time.monotonic() - T0:.2f}s", file=sys.stderr, flush=True)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    print(f"  total {time.monotonic() - T0:.2f}s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
