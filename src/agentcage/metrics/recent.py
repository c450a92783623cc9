"""Decisions of the last hour by verdict, kept in the process that made them.

A Prometheus counter says how many decisions were made since the process started;
"how many in the last hour" would take two scrapes an hour apart, or a Prometheus
server. `cage status` has neither, so each sidecar keeps one-minute buckets of the
last hour and serves their sum as a gauge, computed at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

VERDICTS = ("allow", "flag", "block")
WINDOW_MINUTES = 60


class RecentVerdicts(Collector):
    """`NAME{verdict}`: decisions in the last `WINDOW_MINUTES` whole minutes plus this one."""

    def __init__(
        self,
        name: str,
        documentation: str,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._clock = clock
        # minute -> counts by verdict; a lock because scrapes run in the server's threads.
        self._buckets: dict[int, dict[str, int]] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def add(self, verdict: str) -> None:
        if verdict not in VERDICTS:
            return
        minute = int(self._clock() // 60)
        with self._lock:
            bucket = self._buckets.get(minute)
            if bucket is None:
                self._expire(minute)
                bucket = self._buckets[minute] = dict.fromkeys(VERDICTS, 0)
            bucket[verdict] += 1

    def counts(self) -> dict[str, int]:
        minute = int(self._clock() // 60)
        totals = dict.fromkeys(VERDICTS, 0)
        with self._lock:
            self._expire(minute)
            for bucket in self._buckets.values():
                for verdict, count in bucket.items():
                    totals[verdict] += count
        return totals

    def _expire(self, minute: int) -> None:
        for old in [m for m in self._buckets if m <= minute - WINDOW_MINUTES]:
            del self._buckets[old]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=["verdict"])
        for verdict, count in self.counts().items():
            family.add_metric([verdict], count)
        yield family
