"""Values exchanged between the proxy (or DNS sidecar) and the inspection engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Verdict(StrEnum):
    """Ordered by severity: the worst verdict of a chain wins."""

    ALLOW = "allow"
    FLAG = "flag"  # logged, forwarded
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Verdict.ALLOW: 0, Verdict.FLAG: 1, Verdict.BLOCK: 2}

Severity = Literal["info", "warning", "high", "critical"]


@dataclass(frozen=True, slots=True)
class Headers:
    """Header pairs in wire order; names compared case-insensitively, repeats kept."""

    items: tuple[tuple[str, str], ...] = ()
    # Values by lower-cased name, built once: inspectors look headers up many times.
    _by_name: dict[str, list[str]] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for key, value in self.items:
            self._by_name.setdefault(key.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._by_name.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self._by_name.get(name.lower(), ()))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request from the agent, as it will leave the proxy.

    `host` and `port` are where the connection really goes (the proxy has already
    checked that CONNECT target, TLS SNI and Host header agree). `body` is the raw
    body as sent; inspectors that need it decoded undo `Content-Encoding` themselves
    through `agentcage.policy.decoding`, with bounded output.
    """

    method: str
    scheme: str  # "http" | "https"
    host: str  # lower-case, no trailing dot; may be an IP literal
    port: int
    path: str  # path and query exactly as sent, e.g. "/v1/messages?beta=true"
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    flow_id: str = ""
    client: str = ""  # "ip:port" of the agent

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    @property
    def content_encoding(self) -> str:
        return (self.headers.get("content-encoding") or "").strip().lower()


ControlKind = Literal["ping", "pong", "close"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One WebSocket message after the handshake (`from_client` False = from the server).

    Control frames come through here too, with `control` naming their type: the
    payload of a ping or pong (at most 125 bytes) or the reason of a close frame
    (UTF-8 text, at most 123 bytes; its close code is not part of the payload).
    Placeholders are never injected into a control frame.
    """

    host: str
    port: int
    path: str
    payload: bytes
    is_text: bool
    from_client: bool = True
    flow_id: str = ""
    client: str = ""
    control: ControlKind | None = None  # None: a text or binary message

    @property
    def place(self) -> str:
        """Where the payload sits, as reasons name it ("websocket message", ...)."""
        if self.control is None:
            return "websocket message"
        return "websocket close reason" if self.control == "close" else f"websocket {self.control}"


@dataclass(frozen=True, slots=True)
class Finding:
    """What one inspector concluded. ALLOW findings are not recorded."""

    inspector: str
    verdict: Verdict
    reason: str
    rules: tuple[str, ...] = ()  # matched rule / pattern names, never matched values
    severity: Severity = "warning"


@dataclass(frozen=True, slots=True)
class Decision:
    """The chain's answer for one request or frame."""

    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    status: int = 200  # for BLOCK: 403, or 429 for rate limits
    # Learn mode: a block the chain observed instead of enforcing (its finding is in
    # `findings` as a flag). Meaningful only when `verdict` is not BLOCK.
    would_block: bool = False

    @property
    def blocking(self) -> Finding | None:
        return next((f for f in self.findings if f.verdict is Verdict.BLOCK), None)

    @property
    def inspector(self) -> str:
        first = self.blocking or (self.findings[0] if self.findings else None)
        return first.inspector if first else ""

    @property
    def reason(self) -> str:
        first = self.blocking or (self.findings[0] if self.findings else None)
        return first.reason if first else ""

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(rule for f in self.findings for rule in f.rules)
