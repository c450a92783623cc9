"""High Shannon entropy in bodies, URL path segments and query values (bits per byte).

Compressed or encrypted data sits near 8 bits/byte, text near 4-5: an agent that
encrypts or compresses what it sends out stands out even when no pattern matches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from agentcage.policy.multipart import boundary_of, parts
from agentcage.policy.payload import Payloads
from agentcage.policy.shannon import sampled_entropy, shannon_entropy
from agentcage.policy.types import Finding, Frame, Request, Verdict

if TYPE_CHECKING:
    from agentcage.config.inspection import EntropyConfig


NAME = "entropy"


class EntropyInspector:
    name = NAME

    def __init__(self, config: EntropyConfig, payloads: Payloads) -> None:
        self.config = config
        self.verdict = Verdict(config.action)
        self._exempt = tuple(t.lower() for t in config.exempt_content_types)
        self._payloads = payloads

    def inspect_request(self, request: Request) -> Finding | None:
        found = self._check_url(request.path)
        if found is not None:
            return found
        ctype = request.content_type
        if ctype and ctype.startswith(self._exempt):
            return None
        if ctype == "multipart/form-data":
            boundary = boundary_of(request.headers.get("content-type") or "")
            if boundary is not None:
                return self._check_parts(self._payloads.of(request).data, boundary)
        return self._check_body(request, "body")

    def inspect_frame(self, frame: Frame) -> Finding | None:
        # Binary messages (protobuf, msgpack, compressed) are legitimately dense.
        if not frame.from_client or not frame.is_text:
            return None
        return self._check_body(frame, frame.place)

    def _check_parts(self, body: bytes, boundary: str) -> Finding | None:
        # Each part by its own type: an uploaded tarball is exempt, a text field is not.
        for part in parts(body, boundary):
            if part.content_type and part.content_type.startswith(self._exempt):
                continue
            if len(part.data) < self.config.min_body_bytes:
                continue
            found = self._judge(sampled_entropy(part.data), f"multipart part {part.name[:40]!r}")
            if found is not None:
                return found
        return None

    def _check_body(self, subject: Request | Frame, where: str) -> Finding | None:
        payload = self._payloads.of(subject)
        if len(payload.data) < self.config.min_body_bytes:
            return None
        return self._judge(payload.entropy, where)

    def _judge(self, entropy: float, where: str) -> Finding | None:
        if entropy < self.config.threshold:
            return None
        return Finding(
            NAME,
            self.verdict,
            f"{where} entropy {entropy:.2f} bits/byte is at or above {self.config.threshold:g}",
            ("body-entropy",),
        )

    def _check_url(self, target: str) -> Finding | None:
        path, _, query = target.partition("?")
        pieces = [("path segment", unquote(s)) for s in path.split("/")]
        pieces += [("query value", v) for _, v in parse_qsl(query, keep_blank_values=True)]
        for where, text in pieces:
            if len(text) < self.config.segment_min_length:
                continue
            entropy = shannon_entropy(text)
            if entropy >= self.config.segment_threshold:
                return Finding(
                    NAME,
                    self.verdict,
                    f"URL {where} of {len(text)} characters has entropy {entropy:.2f} "
                    f"(threshold {self.config.segment_threshold:g})",
                    ("url-entropy",),
                )
        return None
