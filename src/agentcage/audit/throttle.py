"""A per-source budget of audit lines, so a scanning agent cannot flood the log.

Each source (a client address) may have `lines` lines in a window of `window`
seconds, counted from its first line; what passes that is counted instead, and when
the window ends the count is handed back once (`ended`) for a summary line. So a
source gets at most `lines + 1` lines per window, however fast it goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0


class LineBudget:
    def __init__(
        self,
        lines: int = 20,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = 4096,
    ) -> None:
        self.lines = lines
        self.window = window
        self._clock = clock
        self._max_sources = max_sources
        self._windows: dict[str, _Window] = {}
        self._ended: list[tuple[str, int]] = []

    def admit(self, source: str) -> bool:
        """True if a line for `source` may be written now; else it is counted."""
        now = self._clock()
        self._expire(now)
        current = self._windows.get(source)
        if current is None:
            if len(self._windows) >= self._max_sources:
                # Every slot taken by a live window: count this one under the oldest
                # source rather than grow without bound.
                source = next(iter(self._windows))
                self._windows[source].suppressed += 1
                return False
            current = self._windows[source] = _Window(now)
        if current.written < self.lines:
            current.written += 1
            return True
        current.suppressed += 1
        return False

    def ended(self) -> list[tuple[str, int]]:
        """(source, count) for each window that ended with lines left out, once each."""
        self._expire(self._clock())
        ended, self._ended = self._ended, []
        return ended

    def _expire(self, now: float) -> None:
        for source, window in list(self._windows.items()):
            if now - window.started >= self.window:
                del self._windows[source]
                if window.suppressed:
                    self._ended.append((source, window.suppressed))
