"""The one mitmproxy version the proxy's patches of its internals are written against.

Each patch module's `install()` is a function marked `@patches_mitmproxy`: it runs once
per process, and only against that version (any other refuses to start, rather than
patch code it was not read against).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import mitmproxy.version

PINNED = "11.0.2"


def require_pinned() -> None:
    """Refuse to patch a mitmproxy other than the one the patches were written against."""
    version = mitmproxy.version.VERSION
    if version != PINNED:
        raise RuntimeError(f"agentcage's proxy needs mitmproxy {PINNED}, found {version}")


def patches_mitmproxy(apply: Callable[[], None]) -> Callable[[], None]:
    """`apply` run at most once (a second call does nothing), after `require_pinned`."""
    applied = False

    @functools.wraps(apply)
    def install() -> None:
        nonlocal applied
        if applied:
            return
        require_pinned()
        apply()
        applied = True

    return install
