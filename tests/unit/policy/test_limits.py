"""Rate limit (injectable clock) and body size."""

from __future__ import annotations

from agentcage.config.inspection import RateLimitConfig
from agentcage.policy.engine import Policy
from agentcage.policy.inspectors.rate_limit import MAX_HOSTS, RateLimitInspector
from agentcage.policy.types import Frame, Verdict
from tests.unit.policy.helpers import config, frame, policy, request


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock | None = None, **budgets: object) -> RateLimitInspector:
    """Only the budgets given; every other one off (0 disables a bucket)."""
    off = {"per_second": 0, "burst": 0}
    settings: dict[str, object] = {
        "reads": off,
        "writes": off,
        "upload": off,
        "cage_upload": off,
        **budgets,
    }
    return RateLimitInspector(RateLimitConfig.model_validate(settings), clock or Clock())


def test_burst_then_refill_then_429() -> None:
    clock = Clock()
    writes = limiter(clock, writes={"per_second": 2, "burst": 3})
    results = [writes.inspect_request(request(body=b"x")) for _ in range(4)]
    assert results[:3] == [None, None, None]
    assert results[3] is not None and results[3].verdict is Verdict.BLOCK
    assert results[3].rules == ("rate-limit:writes",)
    assert "rate_limit.writes.per_second" in results[3].reason
    clock.now += 0.5  # one token back at 2/s
    assert writes.inspect_request(request(body=b"x")) is None
    assert writes.inspect_request(request(body=b"x")) is not None


def test_reads_and_writes_are_separate_budgets() -> None:
    both = limiter(reads={"per_second": 1, "burst": 5}, writes={"per_second": 1, "burst": 1})
    assert both.inspect_request(request(body=b"x")) is None
    assert both.inspect_request(request(body=b"x")) is not None  # writes spent
    # A package manager's downloads are not held back by the writes budget.
    assert all(both.inspect_request(request(method="GET")) is None for _ in range(5))
    refused = both.inspect_request(request(method="GET"))
    assert refused is not None and "requests without a body" in refused.reason


def test_upload_bytes_per_host_and_for_the_cage() -> None:
    clock = Clock()
    uploads = limiter(
        clock,
        upload={"per_second": 1000, "burst": 10_000},
        cage_upload={"per_second": 1000, "burst": 17_000},
    )
    body = b"a" * 8000
    assert uploads.inspect_request(request("a.example.com", body=body)) is None
    per_host = uploads.inspect_request(request("a.example.com", body=body))
    assert per_host is not None and per_host.rules == ("rate-limit:upload",)
    assert uploads.inspect_request(request("b.example.com", body=body)) is None
    cage = uploads.inspect_request(request("c.example.com", body=body))
    assert cage is not None and cage.rules == ("rate-limit:cage_upload",)
    assert "all hosts together" in cage.reason and "rate_limit.cage_upload" in cage.reason
    # WebSocket messages from the agent spend the same bytes; the server's do not.
    clock.now += 20
    assert uploads.inspect_frame(frame(b"a" * 9000, "a.example.com")) is None
    assert uploads.inspect_frame(frame(b"a" * 9000, "a.example.com")) is not None
    server = Frame("a.example.com", 443, "/ws", b"a" * 99_000, True, from_client=False)
    assert uploads.inspect_frame(server) is None


def test_a_refused_request_spends_nothing() -> None:
    both = limiter(writes={"per_second": 1, "burst": 10}, upload={"per_second": 1, "burst": 1000})
    assert both.inspect_request(request(body=b"a" * 5000)) is not None  # larger than the burst
    assert all(both.inspect_request(request(body=b"a")) is None for _ in range(10))


def test_buckets_are_per_host() -> None:
    writes = limiter(writes={"per_second": 1, "burst": 1})
    assert writes.inspect_request(request("a.example.com", body=b"x")) is None
    assert writes.inspect_request(request("b.example.com", body=b"x")) is None
    assert writes.inspect_request(request("a.example.com", body=b"x")) is not None


def test_table_is_bounded() -> None:
    reads = limiter(reads={"per_second": 1, "burst": 1})
    for i in range(MAX_HOSTS + 50):
        reads.inspect_request(request(f"h{i}.example.com", method="GET"))
    assert len(reads._reads._state) == MAX_HOSTS  # type: ignore[union-attr]


def test_defaults_let_a_package_manager_through() -> None:
    # 3,000 downloads from one registry as fast as they come, then a few API calls
    # with large bodies: none is refused.
    engine = Policy.from_config(config(), {}, clock=Clock())
    downloads = [request(path="/x/-/x-1.0.0.tgz", method="GET")] * 3000
    assert all(engine.check_request(r).status == 200 for r in downloads)
    prompt = request(body=b'{"messages": "' + b"a" * 900_000 + b'"}')
    assert all(engine.check_request(prompt).status != 429 for _ in range(20))


def test_legacy_keys_keep_their_0_3_meaning() -> None:
    clock = Clock()
    engine = Policy.from_config(
        config(rate_limit={"requests_per_second": 1, "burst": 2}), {}, clock=clock
    )
    decisions = [engine.check_request(request(method="GET")) for _ in range(3)]
    assert [d.status for d in decisions] == [200, 200, 429]
    assert decisions[2].inspector == "rate-limit"
    assert decisions[2].rules == ("rate-limit:requests_per_second",)
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
