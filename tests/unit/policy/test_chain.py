from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agentcage.policy.chain import Chain
from agentcage.policy.types import Finding, Frame, Request, Verdict
from tests.unit.policy.helpers import frame, policy, request


@dataclass
class Fixed:
    """A fake inspector answering a fixed verdict and recording that it ran."""

    name: str
    verdict: Verdict | None
    calls: list[str] = field(default_factory=list)
    block_status: int = 403

    def inspect_request(self, request: Request) -> Finding | None:
        self.calls.append(self.name)
        if self.verdict is None:
            return None
        return Finding(self.name, self.verdict, f"{self.name} says {self.verdict.value}")


class Exploding:
    name = "exploding"

    def inspect_request(self, request: Request) -> Finding | None:
        raise RuntimeError("secret sk-live-value in the message")

    def inspect_frame(self, frame: Frame) -> Finding | None:
        raise KeyError("boom")


class Liar:
    name = "liar"

    def inspect_request(self, request: Request) -> Finding | None:
        return "allow"  # type: ignore[return-value]


def test_runs_in_order_and_collects_flags() -> None:
    a, b, c = Fixed("a", None), Fixed("b", Verdict.FLAG), Fixed("c", Verdict.FLAG)
    shared: list[str] = []
    for inspector in (a, b, c):
        inspector.calls = shared
    decision = Chain([a, b, c]).check_request(request())
    assert shared == ["a", "b", "c"]
    assert decision.verdict is Verdict.FLAG
    assert [f.inspector for f in decision.findings] == ["b", "c"]
    assert decision.status == 200


def test_first_block_stops_the_chain_and_keeps_earlier_findings() -> None:
    a, b, c = Fixed("a", Verdict.FLAG), Fixed("b", Verdict.BLOCK), Fixed("c", Verdict.FLAG)
    decision = Chain([a, b, c]).check_request(request())
    assert decision.verdict is Verdict.BLOCK
    assert c.calls == []
    assert [f.inspector for f in decision.findings] == ["a", "b"]
    assert decision.inspector == "b"
    assert decision.status == 403


def test_block_status_comes_from_the_blocking_inspector() -> None:
    decision = Chain([Fixed("limit", Verdict.BLOCK, block_status=429)]).check_request(request())
    assert decision.status == 429


def test_an_exception_blocks_without_leaking_its_message() -> None:
    after = Fixed("after", None)
    decision = Chain([Exploding(), after]).check_request(request())
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "exploding"
    assert decision.reason == "inspector-error: RuntimeError"
    assert "sk-live" not in repr(decision)
    assert after.calls == []
    frame_decision = Chain([Exploding()]).check_frame(frame(b"x"))
    assert frame_decision.reason == "inspector-error: KeyError"


class Escaping(BaseException):
    """Derives from BaseException only, as no well-behaved error does."""


@dataclass
class Raising:
    """Raises `error` from every hook, the way a faulty plugin might."""

    error: BaseException
    name: str = "raising"

    def inspect_request(self, request: Request) -> Finding | None:
        raise self.error

    def inspect_frame(self, frame: Frame) -> Finding | None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        SystemExit(3),
        KeyboardInterrupt(),
        GeneratorExit(),
        asyncio.CancelledError(),
        Escaping("sk-live-value"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_any_base_exception_blocks(error: BaseException) -> None:
    after = Fixed("after", None)
    decision = Chain([Raising(error), after]).check_request(request())
    assert decision.verdict is Verdict.BLOCK
    assert decision.reason == f"inspector-error: {type(error).__name__}"
    assert after.calls == []
    assert Chain([Raising(error)]).check_frame(frame(b"x")).verdict is Verdict.BLOCK


class Hostile:
    """Fails wherever the chain touches it: its name, its hook lookup, its status."""

    @property
    def name(self) -> str:
        raise SystemExit(1)

    @property
    def block_status(self) -> int:
        raise KeyboardInterrupt

    def __getattr__(self, hook: str) -> object:
        raise GeneratorExit


def test_an_inspector_failing_outside_its_hook_blocks() -> None:
    decision = Chain([Hostile()]).check_request(request())
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "Hostile"
    assert decision.reason == "inspector-error: GeneratorExit"
    assert decision.status == 403


@pytest.mark.parametrize(
    "finding",
    [
        Finding("odd", "block", "a string verdict"),  # type: ignore[arg-type]
        Finding("odd", Verdict.FLAG, b"bytes reason"),  # type: ignore[arg-type]
        Finding("odd", Verdict.FLAG, "rules of ints", (1, 2)),  # type: ignore[arg-type]
        Finding("odd", Verdict.FLAG, "unknown severity", (), "dire"),  # type: ignore[arg-type]
        Finding(None, Verdict.FLAG, "no inspector name"),  # type: ignore[arg-type]
    ],
)
def test_a_malformed_finding_blocks(finding: Finding) -> None:
    @dataclass
    class Returning:
        name: str = "returning"

        def inspect_request(self, request: Request) -> Finding | None:
            return finding

    decision = Chain([Returning()]).check_request(request())
    assert decision.verdict is Verdict.BLOCK
    assert decision.reason == "inspector-error: not a Finding or None"


def test_block_status_out_of_range_is_403() -> None:
    for status in (200, 600, True, "429"):
        inspector = Fixed("odd", Verdict.BLOCK, block_status=status)  # type: ignore[arg-type]
        assert Chain([inspector]).check_request(request()).status == 403


def test_a_non_finding_result_blocks() -> None:
    decision = Chain([Liar()]).check_request(request())
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "liar"


def test_inspectors_without_a_hook_are_skipped() -> None:
    only_requests = Fixed("req", Verdict.BLOCK)
    assert Chain([only_requests]).check_frame(frame(b"x")).verdict is Verdict.ALLOW


def test_policy_chain_order() -> None:
    engine = policy(rate_limit={"requests_per_second": 1, "burst": 1}, inspectors=[])
    names = [inspector.name for inspector in engine.chain.inspectors]
    assert names[:10] == [
        "rate-limit",
        "domain",
        "port",
        "url-data",
        "decoding",
        "secret-injection",
        "secrets",
        "body-size",
        "entropy",
        "content-type",
    ]


def test_disabled_sections_leave_the_chain() -> None:
    engine = policy(
        entropy=False,
        content_type=False,
        url_data=False,
        max_request_body=0,
        secrets={"enabled": False},
    )
    names = [inspector.name for inspector in engine.chain.inspectors]
    assert names == ["domain", "port", "decoding", "secret-injection"]


def test_custom_inspectors_run_last(tmp_path: Path) -> None:
    plugin = tmp_path / "mine.py"
    plugin.write_text(
        "class Mine:\n    name = 'x'\n    def inspect_request(self, r):\n        return None\n"
    )
    engine = policy(inspectors=[{"name": "mine", "path": str(plugin)}])
    assert engine.chain.inspectors[-1].name == "mine"
