"""Budgets on what the agent sends: over one, the agent gets 429 Too Many Requests.

Data leaves a cage in request bodies, URLs, headers and WebSocket messages, so
the tight budgets are on requests that carry a body and on bytes sent (per host
and for the whole cage). Requests without a body are a package manager's
downloads: hundreds a second to one registry is normal, so their ceiling only
stops a runaway loop. A request is checked against every budget first and spends
from them only if all have room, so a refused request costs nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentcage.policy.interface import block
from agentcage.policy.types import Finding, Frame, Request

if TYPE_CHECKING:
    from agentcage.config.inspection import ByteBudget, RateLimitConfig, RequestBudget


NAME = "rate-limit"
# Rate limiting runs before the domain check, so an agent cycling through random
# names must not grow the tables without bound; the least recently used bucket goes.
MAX_HOSTS = 10_000
CAGE = ""  # the key of the cage-wide bucket


@dataclass(frozen=True, slots=True)
class Budget:
    """One kind of budget: what it counts, its bucket, and how a refusal reads."""

    key: str  # the config key, e.g. "writes"
    rate: float
    burst: float
    unit: str  # "requests" or "bytes"
    what: str  # e.g. "requests with a body"

    def refusal(self, host: str) -> str:
        where = "all hosts together" if self.key == "cage_upload" else host
        amount = f"{self.rate:g} {self.unit}/s" if self.unit == "requests" else _size(self.rate)
        return (
            f"more than {amount} of {self.what} (burst {self._burst()}) to {where}; "
            f"raise rate_limit.{self.key}.per_second or .burst if this is legitimate"
        )

    def _burst(self) -> str:
        return f"{self.burst:g}" if self.unit == "requests" else _size(self.burst)


class Buckets:
    """Token buckets keyed by host, least recently used dropped past MAX_HOSTS."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time

    def available(self, key: str, now: float) -> float:
        budget = self.budget
        tokens, last = self._state.get(key, (budget.burst, now))
        return min(budget.burst, tokens + max(0.0, now - last) * budget.rate)

    def spend(self, key: str, amount: float, now: float) -> None:
        tokens = self.available(key, now) - amount
        self._state.pop(key, None)
        self._state[key] = (tokens, now)
        if len(self._state) > MAX_HOSTS:
            self._state.popitem(last=False)


class RateLimitInspector:
    name = NAME
    block_status = 429

    def __init__(self, config: RateLimitConfig, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._reads = _buckets("reads", config.reads, "requests", "requests without a body")
        self._writes = _buckets("writes", config.writes, "requests", "requests with a body")
        self._upload = _buckets("upload", config.upload, "bytes", "uploads")
        self._cage = _buckets("cage_upload", config.cage_upload, "bytes", "uploads")
        legacy = config.legacy
        self._every = (
            _buckets("requests_per_second", legacy, "requests", "requests")
            if legacy is not None
            else None
        )

    def inspect_request(self, request: Request) -> Finding | None:
        host = request.host.lower().rstrip(".")
        counted = self._writes if request.body else self._reads
        size = _request_bytes(request)
        return self._spend(
            [(counted, host, 1.0), (self._every, host, 1.0)],
            [(self._upload, host, size), (self._cage, CAGE, size)],
            host,
        )

    def inspect_frame(self, frame: Frame) -> Finding | None:
        if not frame.from_client:
            return None
        host = frame.host.lower().rstrip(".")
        size = float(len(frame.payload))
        return self._spend([], [(self._upload, host, size), (self._cage, CAGE, size)], host)

    def _spend(
        self,
        requests: list[tuple[Buckets | None, str, float]],
        sizes: list[tuple[Buckets | None, str, float]],
        host: str,
    ) -> Finding | None:
        now = self._clock()
        wanted = [(b, key, n) for b, key, n in (*requests, *sizes) if b is not None]
        for buckets, key, amount in wanted:
            budget = buckets.budget
            # Something larger than the whole burst could never pass: refuse it now
            # rather than let it wait forever (the message says how to raise it).
            if amount > budget.burst or buckets.available(key, now) < amount:
                rule = f"rate-limit:{budget.key}"
                return block(NAME, budget.refusal(host), rule, severity="warning")
        for buckets, key, amount in wanted:
            buckets.spend(key, amount, now)
        return None


def _buckets(key: str, budget: RequestBudget | ByteBudget, unit: str, what: str) -> Buckets | None:
    if not budget.enabled:
        return None
    return Buckets(Budget(key, float(budget.per_second), float(budget.burst), unit, what))


def _request_bytes(request: Request) -> float:
    head = len(request.method) + len(request.path) + 12
    head += sum(len(name) + len(value) + 4 for name, value in request.headers)
    return float(head + len(request.body))


def _size(amount: float) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if amount >= factor:
            return f"{amount / factor:g} {unit}"
    return f"{amount:g} bytes"
