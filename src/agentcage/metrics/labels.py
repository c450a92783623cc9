"""Label values an agent can influence, kept to a bounded set."""

from __future__ import annotations

import threading

OTHER = "other"


class BoundedLabel:
    """The first `limit` distinct values admitted keep their name; any other is `other`.

    Only values the caller admits (say, hosts the policy allowed) take a place, so
    an agent cannot fill the set with names of its own making.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def of(self, value: str, *, admit: bool = True) -> str:
        if value in self._known:
            return value
        if not admit:
            return OTHER
        with self._lock:
            if len(self._known) >= self.limit:
                return OTHER
            self._known.add(value)
        return value
