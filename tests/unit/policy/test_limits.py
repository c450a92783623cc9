"""Rate limit (injectable clock) and body size."""

from __future__ import annotations

from agentcage.policy.inspectors.rate_limit import MAX_HOSTS, RateLimitInspector
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import frame, policy, request


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_then_429() -> None:
    clock = Clock()
    limiter = RateLimitInspector(rate=2, burst=3, clock=clock)
    results = [limiter.inspect_request(request()) for _ in range(4)]
    assert results[:3] == [None, None, None]
    assert results[3] is not None and results[3].verdict is Verdict.BLOCK
    clock.now += 0.5  # one token back at 2/s
    assert limiter.inspect_request(request()) is None
    assert limiter.inspect_request(request()) is not None


def test_buckets_are_per_host() -> None:
    limiter = RateLimitInspector(rate=1, burst=1, clock=Clock())
    assert limiter.inspect_request(request("a.example.com")) is None
    assert limiter.inspect_request(request("b.example.com")) is None
    assert limiter.inspect_request(request("a.example.com")) is not None


def test_table_is_bounded() -> None:
    limiter = RateLimitInspector(rate=1, burst=1, clock=Clock())
    for i in range(MAX_HOSTS + 50):
        limiter.inspect_request(request(f"h{i}.example.com"))
    assert len(limiter._buckets) == MAX_HOSTS


def test_policy_answers_429_and_can_be_disabled() -> None:
    clock = Clock()
    from agentcage.policy.engine import Policy
    from tests.unit.policy.helpers import config

    engine = Policy.from_config(
        config(rate_limit={"requests_per_second": 1, "burst": 2}), {}, clock=clock
    )
    decisions = [engine.check_request(request()) for _ in range(3)]
    assert [d.status for d in decisions] == [200, 200, 429]
    assert decisions[2].inspector == "rate-limit"
    for off in (False, {"requests_per_second": 0}, {"burst": 0}):
        unlimited = policy(rate_limit=off)
        assert all(unlimited.check_request(request()).status == 200 for _ in range(100))


def test_body_size_limit_names_both_sizes() -> None:
    engine = policy(max_request_body=1000, entropy=False, content_type=False)
    assert engine.check_request(request(body=b"a" * 1000)).verdict is Verdict.ALLOW
    decision = engine.check_request(request(body=b"a" * 1001))
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "body-size"
    assert "1001 bytes" in decision.reason and "1000 bytes" in decision.reason
    assert engine.check_frame(frame(b"a" * 1001)).verdict is Verdict.BLOCK


def test_body_size_zero_disables() -> None:
    engine = policy(max_request_body=0, entropy=False, content_type=False)
    assert engine.check_request(request(body=b"a" * 11_000_000)).verdict is Verdict.ALLOW
