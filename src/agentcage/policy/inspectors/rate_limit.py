"""Per-host token bucket: over the limit the agent gets 429 Too Many Requests."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from agentcage.policy.interface import block
from agentcage.policy.types import Finding, Request

NAME = "rate-limit"
# Rate limiting runs before the domain check, so an agent cycling through random
# names must not grow the table without bound; the least recently used bucket goes.
MAX_HOSTS = 10_000


class RateLimitInspector:
    name = NAME
    block_status = 429

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time

    def inspect_request(self, request: Request) -> Finding | None:
        host = request.host.lower().rstrip(".")
        now = self._clock()
        tokens, last = self._buckets.pop(host, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        if tokens < 1.0:
            self._remember(host, tokens, now)
            return block(
                NAME,
                f"more than {self.rate:g} requests/s (burst {self.burst}) to {host}",
                "rate-limit",
                severity="warning",
            )
        self._remember(host, tokens - 1.0, now)
        return None

    def _remember(self, host: str, tokens: float, now: float) -> None:
        self._buckets[host] = (tokens, now)
        if len(self._buckets) > MAX_HOSTS:
            self._buckets.popitem(last=False)
