"""Bodies that are not what they claim: binary sent as text, and long base64 blobs.

Base64 blobs that decode to a known media format (PNG, JPEG, GIF, WebP, PDF, audio)
are not reported: LLM requests carry screenshots and documents this way all day,
and blocking them would break the agent. They are still subject to the body-size
and secret checks.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from agentcage.policy.media import is_media
from agentcage.policy.payload import Payloads
from agentcage.policy.runs import BASE64_ALPHABET, byte_table, long_runs, token_runs
from agentcage.policy.types import Finding, Frame, Request, Verdict

NAME = "content-type"
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/javascript",
    "application/x-ndjson",
    "application/graphql",
)

if TYPE_CHECKING:
    from agentcage.config.inspection import ContentTypeConfig

_TEXT_SUFFIXES = ("+json", "+xml")
# Line breaks, raw or JSON-escaped (backslash-n; backslash-slash is an escaped "/"),
# belong to the run, so MIME-style base64 wrapped at 76 columns is still one blob.
_BASE64_TABLE = byte_table(BASE64_ALPHABET + b"\r\n\\")
_WRAPPING = re.compile(rb"\\[nr/]|[\r\n]")
_MIN_MEASURED = 256  # shorter bodies cannot reach a meaningful entropy


def is_textual(content_type: str) -> bool:
    return content_type.startswith(_TEXT_TYPES) or content_type.endswith(_TEXT_SUFFIXES)


class ContentTypeInspector:
    name = NAME

    def __init__(self, config: ContentTypeConfig, payloads: Payloads) -> None:
        self.config = config
        self.verdict = Verdict(config.action)
        self._payloads = payloads

    def inspect_request(self, request: Request) -> Finding | None:
        if not is_textual(request.content_type):
            return None
        data = self._payloads.of(request).data
        if not data:
            return None
        if b"\x00" in data or not _is_utf8(data):
            return self._finding(
                f"body declared {request.content_type} is binary", "binary-as-text"
            )
        payload = self._payloads.of(request)
        if len(data) >= _MIN_MEASURED and payload.entropy > self.config.entropy_ceiling:
            return self._finding(
                f"body declared {request.content_type} has entropy {payload.entropy:.2f} "
                f"bits/byte, above {self.config.entropy_ceiling:g}",
                "text-entropy",
            )
        return self._check_base64(data, "body")

    def inspect_frame(self, frame: Frame) -> Finding | None:
        if not frame.from_client or not frame.is_text:
            return None
        return self._check_base64(frame.payload, frame.place)

    def _check_base64(self, data: bytes, where: str) -> Finding | None:
        if not self.config.detect_base64 or len(data) < self.config.base64_min_len:
            return None
        for start, end in self._runs(data):
            run = data[start:end]
            if _looks_like_base64(run) and not is_media(_head(run)):
                return self._finding(
                    f"base64 blob of {len(run)} characters in {where}", "base64-blob"
                )
        return None

    def _runs(self, data: bytes) -> list[tuple[int, int]] | Iterator[tuple[int, int]]:
        shortest = self.config.base64_min_len
        if b"\\" in data or b"\n" in data or b"\r" in data:
            return long_runs(data, _BASE64_TABLE, shortest)
        # Without line breaks or escapes these are the token runs, found already.
        return token_runs(data, shortest)

    def _finding(self, reason: str, rule: str) -> Finding:
        return Finding(NAME, self.verdict, reason, (rule,))


def _is_utf8(data: bytes) -> bool:
    if data.isascii():  # reads the body once instead of building a str of it
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_base64(run: bytes) -> bool:
    # Both letter cases and digits: rules out long words, hex digests and "-----" rulers.
    return (
        re.search(rb"[a-z]", run) is not None
        and re.search(rb"[A-Z]", run) is not None
        and re.search(rb"[0-9]", run) is not None
    )


def _head(run: bytes) -> bytes:
    chunk = _WRAPPING.sub(lambda m: b"/" if m.group() == b"\\/" else b"", run[:64])[:24]
    try:
        if b"-" in chunk or b"_" in chunk:
            return base64.urlsafe_b64decode(chunk)
        return base64.b64decode(chunk)
    except (binascii.Error, ValueError):
        return b""
