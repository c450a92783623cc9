"""Per-zone budgets of distinct names and labels: a cap on what a tunnel can carry.

Each tunnel query must be a name the resolver has not cached, so a tunnel needs ever
new names, and new labels to hold its data. An agent resolves the same few names
again and again. So each zone gets a budget of distinct names and of distinct labels
below it within a sliding window; once one is spent, new names in that zone are
refused, while names already seen keep resolving (an agent's working set is never
cut off). Memory is bounded: per zone by the budgets, and at most `MAX_TRACKED_ZONES`
zones (the least recently used is forgotten).
"""

from __future__ import annotations

from collections import OrderedDict

from agentcage.dns.plan import DnsLimitsView

MAX_TRACKED_ZONES = 512


class _RecentKeys:
    """Keys with the time each was last asked for, oldest first."""

    def __init__(self) -> None:
        self.last: OrderedDict[str, float] = OrderedDict()

    def expire(self, before: float) -> None:
        while self.last and next(iter(self.last.values())) <= before:
            self.last.popitem(last=False)

    def touch(self, key: str, now: float) -> None:
        self.last[key] = now
        self.last.move_to_end(key)


class _Zone:
    def __init__(self) -> None:
        self.names = _RecentKeys()
        self.labels = _RecentKeys()


class ZoneBudgets:
    def __init__(self, cfg: DnsLimitsView) -> None:
        self._max_names = cfg.max_unique_subdomains
        self._max_labels = cfg.max_unique_labels
        self._window = cfg.unique_window
        self._zones: OrderedDict[str, _Zone] = OrderedDict()

    def admit(self, zone: str, name: str, labels: list[str], now: float) -> str | None:
        """Spend budget on `name` (with its `labels` below `zone`); why not, if it may not go."""
        state = self._zones.pop(zone, None) or _Zone()
        self._zones[zone] = state
        while len(self._zones) > MAX_TRACKED_ZONES:
            self._zones.popitem(last=False)
        before = now - self._window
        state.names.expire(before)
        state.labels.expire(before)
        if name not in state.names.last:
            if len(state.names.last) >= self._max_names:
                return self._spent(f"{self._max_names} distinct names", zone)
            new = {label for label in labels if label not in state.labels.last}
            if len(state.labels.last) + len(new) > self._max_labels:
                return self._spent(f"{self._max_labels} distinct labels", zone)
        state.names.touch(name, now)
        for label in labels:
            state.labels.touch(label, now)
        return None

    def _spent(self, what: str, zone: str) -> str:
        return f"budget of {what} under {zone} within {self._window}s spent"
