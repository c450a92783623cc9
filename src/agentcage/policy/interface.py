"""The inspector plugin API: what the chain calls, and what plugins implement.

An inspector is any object with a `name` and one or both of
`inspect_request(request) -> Finding | None` and `inspect_frame(frame) -> Finding | None`.
It need not import or subclass anything of ours; returning `None` means "nothing to
report". Plugins may also define `configure(config: dict)`, called once at load
with the `config:` mapping of their `inspectors:` entry. Built-in inspectors that
answer a block with something other than 403 set `block_status`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from agentcage.policy.types import Finding, Frame, Request, Severity, Verdict


@runtime_checkable
class Inspector(Protocol):
    """The minimum: a name. The chain looks up the hooks with `getattr`."""

    name: str


class RequestInspector(Inspector, Protocol):
    def inspect_request(self, request: Request) -> Finding | None: ...


class FrameInspector(Inspector, Protocol):
    def inspect_frame(self, frame: Frame) -> Finding | None: ...


class Configurable(Protocol):
    def configure(self, config: dict[str, Any]) -> None: ...


def block(inspector: str, reason: str, *rules: str, severity: Severity = "high") -> Finding:
    return Finding(inspector, Verdict.BLOCK, reason, tuple(rules), severity)
