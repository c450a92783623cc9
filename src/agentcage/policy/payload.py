"""The decoded body of a request or frame, shared by the inspectors that read it.

Several inspectors need the same decoded body and its entropy; `Payloads` decodes
once per request (a one-slot cache keyed on the object's identity, which is enough
because the chain inspects one request at a time, in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentcage.policy.decoding import DEFAULT_LIMIT, decode_body
from agentcage.policy.shannon import sampled_entropy
from agentcage.policy.types import Frame, Request


@dataclass(slots=True)
class Payload:
    data: bytes
    _entropy: float | None = field(default=None, repr=False)

    @property
    def entropy(self) -> float:
        if self._entropy is None:
            self._entropy = sampled_entropy(self.data)
        return self._entropy


class Payloads:
    """Decoded bodies of requests (Content-Encoding undone, bounded) and frame payloads."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._last: tuple[Request | Frame, Payload] | None = None

    def of(self, subject: Request | Frame) -> Payload:
        """Raises `DecodeError` for a corrupt, unsupported or oversized encoding."""
        last = self._last
        if last is not None and last[0] is subject:
            return last[1]
        if isinstance(subject, Request):
            data = subject.body
            if subject.content_encoding and data:
                coding = ", ".join(subject.headers.get_all("content-encoding"))
                data = decode_body(data, coding, self.limit)
        else:
            data = subject.payload
        payload = Payload(data)
        self._last = (subject, payload)
        return payload
