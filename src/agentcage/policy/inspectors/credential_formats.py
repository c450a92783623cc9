"""The `secrets` inspector: known credential formats must not leave except to their provider.

It scans the URL, header names and values (Basic credentials decoded), the body
(Content-Encoding undone, form bodies percent-decoded) and each WebSocket message
from the agent with the `PatternScanner` (`policy/formats/`). A match toward a host
its format may not go to is a finding; the reason names the format and the place,
never the matched text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from agentcage.policy.canonical_hosts import BadHost, canonical_host, domain_matches
from agentcage.policy.decoding import basic_credentials, percent_decode_repeated
from agentcage.policy.formats.assembly import (
    Assembled,
    AssemblyLimits,
    FormatAssembler,
    distinctive_token,
)
from agentcage.policy.formats.named_values import credential_name
from agentcage.policy.formats.pattern import CredentialPattern, distinctive_prefix
from agentcage.policy.formats.scanner import PatternScanner
from agentcage.policy.payload import Payloads
from agentcage.policy.types import Finding, Frame, Request, Verdict

if TYPE_CHECKING:
    from agentcage.config.inspection import SecretsConfig


NAME = "secrets"
_NAME_SUFFIXES = 16
_FORM = "application/x-www-form-urlencoded"
_AUTH_PLACES = ("header authorization", "header proxy-authorization")


class CredentialFormatInspector:
    name = NAME

    def __init__(
        self,
        scanner: PatternScanner,
        payloads: Payloads,
        limits: AssemblyLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scanner = scanner
        self._payloads = payloads
        self.assembler = FormatAssembler(scanner, limits or AssemblyLimits(), clock)

    @classmethod
    def from_config(
        cls,
        config: SecretsConfig,
        environ: Mapping[str, str],
        payloads: Payloads,
        clock: Callable[[], float] = time.monotonic,
    ) -> CredentialFormatInspector:
        window = config.split_window
        limits = AssemblyLimits(
            max_age=window.max_age_seconds, max_destinations=window.max_destinations
        )
        return cls(PatternScanner.from_config(config, environ), payloads, limits, clock)

    def for_guesses(self) -> CredentialFormatInspector:
        """This inspector for the leak inspector's guesses (a junk character taken
        out, text under an XOR key), which make noise of ordinary data too: only
        formats whose every anchor no word, identifier or base64 ends with (`ghp_`,
        `sk-ant-`; not `sk-`, `AKIA`, a name next to a value or a shape), and none
        disguised. With the disguises and short anchors, random base64url tokens
        (1,500 requests of six) made a format beneath a guess 15 times (mostly
        github_token under a Caesar shift); without, never."""
        kept = [
            p
            for p in self.scanner.patterns
            if distinctive_token(p) and all(distinctive_prefix(a) for a in p.anchors)
        ]
        scanner = PatternScanner(kept, self.scanner.documentation, disguised=False)
        return CredentialFormatInspector(scanner, self._payloads)

    def inspect_request(self, request: Request) -> Finding | None:
        found = self.inspect_decoded(request)
        if found is not None and found.verdict is Verdict.BLOCK:
            return found
        assembled = self.assembler.observe_request(request, _allowed_to(request.host))
        return _assembled(assembled, request.host) or found

    def inspect_decoded(self, request: Request) -> Finding | None:
        """The formats in each place of `request` alone, with nothing remembered: for
        views the leak inspector decoded."""
        return self._scan(request.host, self._request_places(request))

    def inspect_frame(self, frame: Frame) -> Finding | None:
        if not frame.from_client:
            return None
        found = self._scan(frame.host, iter([(frame.place, frame.payload)]))
        if (found is not None and found.verdict is Verdict.BLOCK) or frame.control is not None:
            return found
        assembled = self.assembler.observe_frame(frame, _allowed_to(frame.host))
        return _assembled(assembled, frame.host) or found

    def _request_places(self, request: Request) -> Iterator[tuple[str, bytes]]:
        url = request.path.encode("utf-8", "surrogateescape")
        yield "url", url
        if b"%" in url:
            yield "url", percent_decode_repeated(url)
        # Names are agent-chosen bytes too (`x-<token>: 1`), scanned as one place.
        names = "\n".join(_name_suffixes(key) for key, _ in request.headers)
        yield "header names", names.encode("utf-8", "surrogateescape")
        for key, value in request.headers:
            yield f"header {key.lower()}", value.encode("utf-8", "surrogateescape")
            named = key.lower().encode("utf-8", "surrogateescape")
            if credential_name(named):
                # As a parameter, so the value is read beside its name (`x-api-key`).
                parameter = b"\n" + named + b"=" + value.encode("utf-8", "surrogateescape")
                yield f"header {key.lower()}", parameter
            credentials = basic_credentials(value)
            if credentials is not None:
                yield f"header {key.lower()} (basic auth)", credentials.encode()
        body = self._payloads.of(request).data
        yield "body", body
        first = _first_parameter(body)
        if first:
            yield "body", first
        if request.content_type == _FORM and b"%" in body:
            yield "body", percent_decode_repeated(body)

    def _scan(self, host: str, places: Iterator[tuple[str, bytes]]) -> Finding | None:
        flagged: Finding | None = None
        for where, data in places:
            if not data:
                continue
            for pattern, disguise in self.scanner.matches(data):
                if _allowed(pattern, host):
                    continue
                if pattern.verdict is Verdict.FLAG and where.startswith(_AUTH_PLACES):
                    # A bearer token (a JWT) in an Authorization header is that header's
                    # everyday use: flagging it would put every OAuth call in the audit.
                    continue
                # The reason names the format and the place, never the matched text.
                written = f" ({disguise})" if disguise else ""
                reason = f"{pattern.name}{written} in {where} to {host}"
                if pattern.hosts:
                    reason += f" (it may only go to {', '.join(pattern.hosts)})"
                if pattern.verdict is Verdict.BLOCK:
                    return Finding(NAME, Verdict.BLOCK, reason, (pattern.name,), "critical")
                flagged = flagged or Finding(NAME, pattern.verdict, reason, (pattern.name,))
        return flagged


_NAME_START = re.compile(rb"[A-Za-z_][A-Za-z0-9_.\-]{0,63}=")


def _first_parameter(body: bytes) -> bytes:
    """A form's or an env file's first `name=value`, after a line break: formats read
    by a name (`named_values.py`) find a name by what comes before it."""
    if _NAME_START.match(body) is None:
        return b""
    end = min(_end(body, b"&"), _end(body, b"\n"), 320)
    return b"\n" + body[:end]


def _end(body: bytes, separator: bytes) -> int:
    at = body.find(separator, 0, 320)
    return len(body) if at < 0 else at


def _allowed_to(host: str) -> Callable[[CredentialPattern], bool]:
    return lambda pattern: _allowed(pattern, host)


def _assembled(assembled: Assembled | None, host: str) -> Finding | None:
    if assembled is None:
        return None
    name = assembled.pattern.name
    flows = ", ".join(flow or "-" for flow in assembled.flows)
    reason = f"{name} assembled from {assembled.pieces} pieces sent to {host} (flows {flows})"
    return Finding(NAME, Verdict.BLOCK, reason, (name, "assembled"), "critical")


def _name_suffixes(name: str) -> str:
    """`name` and what follows each of its first dashes, one per line.

    Formats must not follow a token byte, and `x-` is one: `x-ghp_...` is found as
    `ghp_...`. Real header names have a few dashes; the bound keeps a hostile name
    of thousands from costing more than a few copies of itself.
    """
    parts = [name]
    start = 0
    for _ in range(_NAME_SUFFIXES):
        start = name.find("-", start) + 1
        if not start:
            break
        parts.append(name[start:])
    return "\n".join(parts)


def _allowed(pattern: CredentialPattern, host: str) -> bool:
    if not pattern.hosts:
        return False
    try:
        name = canonical_host(host)
    except BadHost:
        return False
    return not name.is_ip and any(domain_matches(name.name, d) for d in pattern.hosts)
