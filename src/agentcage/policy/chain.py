"""Runs inspectors in order; the first block stops the chain; any exception blocks.

In learn mode the chain is given `observe`, which picks (by inspector and finding)
the block findings it only records: such a finding becomes a flag, the chain goes
on, and the decision says `would_block`. Every other block still stops the chain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import get_args

from agentcage.policy.interface import Inspector
from agentcage.policy.types import Decision, Finding, Frame, Request, Severity, Verdict

DEFAULT_BLOCK_STATUS = 403
_SEVERITIES = frozenset(get_args(Severity))


class Chain:
    """A plain ordered list of inspectors; add one by adding it to the list."""

    def __init__(
        self,
        inspectors: Sequence[Inspector],
        observe: Callable[[Inspector, Finding], bool] | None = None,
    ) -> None:
        self.inspectors = list(inspectors)
        self.observe = observe

    def check_request(self, request: Request) -> Decision:
        return self._run("inspect_request", request)

    def check_frame(self, frame: Frame) -> Decision:
        return self._run("inspect_frame", frame)

    def _run(self, hook: str, subject: Request | Frame) -> Decision:
        findings: list[Finding] = []
        worst = Verdict.ALLOW
        observed = False
        for inspector in self.inspectors:
            result = _call(inspector, hook, subject)
            if result is None or result.verdict is Verdict.ALLOW:
                continue
            if result.verdict is Verdict.BLOCK and self._observed(inspector, result):
                reason = f"{result.reason}; let through in learn mode (would block)"
                result = dataclasses.replace(result, verdict=Verdict.FLAG, reason=reason)
                observed = True
            findings.append(result)
            if result.verdict.rank > worst.rank:
                worst = result.verdict
            if result.verdict is Verdict.BLOCK:
                status = _block_status(inspector)
                return Decision(Verdict.BLOCK, tuple(findings), status, observed)
        return Decision(worst, tuple(findings), would_block=observed)

    def _observed(self, inspector: Inspector, finding: Finding) -> bool:
        if self.observe is None:
            return False
        try:
            return self.observe(inspector, finding)
        except Exception:  # enforcing is the safe answer to a broken predicate
            return False


def _call(inspector: Inspector, hook: str, subject: Request | Frame) -> Finding | None:
    """The inspector's finding, checked; a failure of any kind is a block finding.

    BaseException, not Exception: inspectors run synchronously, in the event loop's
    thread, so SystemExit, KeyboardInterrupt, GeneratorExit or a CancelledError
    escaping one was raised by the inspector's own code. A real Ctrl-C or SIGTERM
    reaches the proxy through asyncio's signal handlers, never as an exception
    here, and a real cancellation can only land on an `await`, which an inspector
    call has none of. Letting one through would stop the proxy (SystemExit,
    KeyboardInterrupt) or leave the request without an answer (the others).
    """
    try:
        method = getattr(inspector, hook, None)
        if method is None:
            return None
        result = method(subject)
        if result is None:
            return None
        checked = _checked(result)
        if checked is not None:
            return checked
        reason = "inspector-error: not a Finding or None"
    except BaseException as exc:  # see the docstring
        # Only the type: an exception message may quote the payload, secrets included.
        reason = f"inspector-error: {type(exc).__name__}"
    return Finding(_name(inspector), Verdict.BLOCK, reason, (), "high")


def _checked(result: object) -> Finding | None:
    """A plain copy of a well-formed Finding (its fields reach the audit log), else None."""
    if not isinstance(result, Finding):
        return None
    copy = Finding(
        result.inspector, result.verdict, result.reason, tuple(result.rules), result.severity
    )
    well_formed = (
        isinstance(copy.verdict, Verdict)
        and isinstance(copy.inspector, str)
        and isinstance(copy.reason, str)
        and all(isinstance(rule, str) for rule in copy.rules)
        and copy.severity in _SEVERITIES
    )
    return copy if well_formed else None


def _name(inspector: Inspector) -> str:
    try:
        return str(getattr(inspector, "name", type(inspector).__name__))
    except BaseException:  # a plugin's own property or __str__; see `_call`
        return type(inspector).__name__


def _block_status(inspector: Inspector) -> int:
    try:
        status = getattr(inspector, "block_status", DEFAULT_BLOCK_STATUS)
    except BaseException:  # a plugin's own property; see `_call`
        return DEFAULT_BLOCK_STATUS
    if type(status) is not int or not 400 <= status <= 599:
        return DEFAULT_BLOCK_STATUS
    return status
