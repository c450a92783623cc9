"""Requests (and client WebSocket messages) larger than `max_request_body` are blocked."""

from __future__ import annotations

from agentcage.policy.interface import block
from agentcage.policy.types import Finding, Frame, Request

NAME = "body-size"


class BodySizeInspector:
    name = NAME

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def inspect_request(self, request: Request) -> Finding | None:
        return self._check(len(request.body), "request body")

    def inspect_frame(self, frame: Frame) -> Finding | None:
        return self._check(len(frame.payload), frame.place) if frame.from_client else None

    def _check(self, size: int, what: str) -> Finding | None:
        if size <= self.max_bytes:
            return None
        return block(
            NAME,
            f"{what} is {size} bytes, over the max_request_body limit of {self.max_bytes} bytes",
            "max-request-body",
        )
