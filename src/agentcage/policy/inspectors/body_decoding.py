"""Undo the body's Content-Encoding once, up front; a corrupt body or a bomb is blocked."""

from __future__ import annotations

from agentcage.policy.decoding import DecodeError
from agentcage.policy.interface import block
from agentcage.policy.payload import Payloads
from agentcage.policy.types import Finding, Request

NAME = "decoding"


class DecodingInspector:
    """Blocks what the body inspectors could not read; the decoded body is cached for them."""

    name = NAME

    def __init__(self, payloads: Payloads) -> None:
        self._payloads = payloads

    def inspect_request(self, request: Request) -> Finding | None:
        try:
            self._payloads.of(request)
        except DecodeError as exc:
            return block(NAME, f"body cannot be inspected: {exc}", "undecodable-body")
        return None
