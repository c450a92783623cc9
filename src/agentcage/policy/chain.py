"""Runs inspectors in order; the first block stops the chain; any exception blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentcage.policy.interface import Inspector
from agentcage.policy.types import Decision, Finding, Frame, Request, Verdict

DEFAULT_BLOCK_STATUS = 403


class Chain:
    """A plain ordered list of inspectors; add one by adding it to the list."""

    def __init__(self, inspectors: Sequence[Inspector]) -> None:
        self.inspectors = list(inspectors)

    def check_request(self, request: Request) -> Decision:
        return self._run("inspect_request", request)

    def check_frame(self, frame: Frame) -> Decision:
        return self._run("inspect_frame", frame)

    def _run(self, hook: str, subject: Request | Frame) -> Decision:
        findings: list[Finding] = []
        worst = Verdict.ALLOW
        for inspector in self.inspectors:
            method = getattr(inspector, hook, None)
            if method is None:
                continue
            result = _call(inspector, method, subject)
            if result is None or result.verdict is Verdict.ALLOW:
                continue
            findings.append(result)
            if result.verdict.rank > worst.rank:
                worst = result.verdict
            if result.verdict is Verdict.BLOCK:
                status = getattr(inspector, "block_status", DEFAULT_BLOCK_STATUS)
                if not isinstance(status, int) or not 400 <= status <= 599:
                    status = DEFAULT_BLOCK_STATUS
                return Decision(Verdict.BLOCK, tuple(findings), status)
        return Decision(worst, tuple(findings))


def _call(inspector: Inspector, method: Any, subject: Request | Frame) -> Finding | None:
    name = str(getattr(inspector, "name", type(inspector).__name__))
    try:
        result = method(subject)
    except Exception as exc:
        # Only the type: an exception message may quote the payload, secrets included.
        return Finding(name, Verdict.BLOCK, f"inspector-error: {type(exc).__name__}", (), "high")
    if result is None or (isinstance(result, Finding) and isinstance(result.verdict, Verdict)):
        return result
    return Finding(name, Verdict.BLOCK, "inspector-error: not a Finding or None", (), "high")
