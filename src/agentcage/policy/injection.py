"""Secret injection: a placeholder becomes the real value toward its rule's hosts.

The `secret-injection` inspector (`policy/inspectors/secret_injection.py`) has
already decided that the placeholders may go where they are bound. The agent holds
only placeholders such as `{{ANTHROPIC_API_KEY}}`. Toward a host in its rule's
`inject_to`, `Injector.inject` swaps in the real value, but only in the places its
rule names (`places`: header values by default; also the URL query, uncompressed
bodies, WebSocket messages). Elsewhere toward that host, the URL path included, a
placeholder is forwarded as it is: agents send text holding placeholder strings (a
source file in a prompt). A compressed body is never edited. `ValueScrubber` and
`EchoGuard` (`policy/scrubbing/`) do the reverse on everything coming back, so the
agent never learns a real value even if a server echoes it.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from agentcage.config.constants import ECHO_PLACES
from agentcage.policy.canonical_hosts import BadHost, canonical_host, domain_matches
from agentcage.policy.decoding import basic_credentials, parse_encodings
from agentcage.policy.types import Frame, Headers, Request

if TYPE_CHECKING:
    from agentcage.config.inspection import SecretInjection


_UNSAFE_IN_HEADER = re.compile(r"[\r\n\x00]")
# Partial reads would let a host that stores a value hand it back in pieces; they
# are removed from requests to such hosts, which then answer with the whole body.
RANGE_HEADERS = frozenset({"range", "if-range"})


@dataclass(frozen=True, slots=True)
class SecretRule:
    env: str
    placeholder: str
    inject_to: tuple[str, ...]
    value: str | None  # None: the secret is not set in the proxy's environment
    places: frozenset[str] = frozenset({"headers"})

    @classmethod
    def from_config(cls, rule: SecretInjection, secrets: Mapping[str, str]) -> SecretRule:
        value = secrets.get(rule.env) or None
        return cls(rule.env, rule.token, tuple(rule.inject_to), value, frozenset(rule.places))

    @property
    def stored(self) -> bool:
        """Whether its hosts may store the value (and so echo it back in pieces)."""
        return bool(self.places & ECHO_PLACES)

    def allows(self, host: str) -> bool:
        try:
            name = canonical_host(host)
        except BadHost:
            return False
        return not name.is_ip and any(domain_matches(name.name, d) for d in self.inject_to)


class Injector:
    """Swaps placeholders for real values, only toward each rule's hosts and places."""

    def __init__(self, rules: Sequence[SecretRule]) -> None:
        self.rules = [rule for rule in rules if rule.value is not None]

    def inject(self, request: Request) -> Request:
        rules = [rule for rule in self.rules if rule.allows(request.host)]
        if not rules:
            return request
        path = _inject_query(request.path, _in(rules, "query"))
        headers = [
            (key, _replace_header(value, _in(rules, "headers")))
            for key, value in request.headers.items
            if not (key.lower() in RANGE_HEADERS and any(rule.stored for rule in rules))
        ]
        body = request.body
        if body and not content_codings(request):
            # A compressed body is never edited: the chain blocks one carrying a
            # placeholder this would replace.
            body = _replace_bytes(body, _in(rules, "body"))
        if body is not request.body:
            headers = [
                (key, str(len(body)) if key.lower() == "content-length" else value)
                for key, value in headers
            ]
        if (
            path == request.path
            and body is request.body
            and tuple(headers) == request.headers.items
        ):
            return request
        return dataclasses.replace(request, path=path, headers=Headers(tuple(headers)), body=body)

    def inject_frame(self, frame: Frame) -> Frame:
        if not frame.from_client:
            return frame
        rules = [rule for rule in self.rules if rule.allows(frame.host)]
        payload = _replace_bytes(frame.payload, _in(rules, "websocket"))
        return frame if payload is frame.payload else dataclasses.replace(frame, payload=payload)


def content_codings(request: Request) -> list[str]:
    """The body's codings as `Content-Encoding` lists them (empty: uncompressed)."""
    return parse_encodings(", ".join(request.headers.get_all("content-encoding")))


def _in(rules: Sequence[SecretRule], place: str) -> list[SecretRule]:
    return [rule for rule in rules if place in rule.places]


def _inject_query(target: str, rules: Sequence[SecretRule]) -> str:
    path, mark, query = target.partition("?")
    if not rules or not query:
        return target
    for rule in rules:
        assert rule.value is not None
        value = quote(rule.value, safe="")
        query = query.replace(rule.placeholder, value)
        query = query.replace(quote(rule.placeholder, safe=""), value)
    return path + mark + query


def _replace_header(value: str, rules: Sequence[SecretRule]) -> str:
    # A value holding CR, LF or NUL would split the header (request smuggling); such a
    # secret is never written into a header, so the request fails visibly instead.
    rules = [rule for rule in rules if not _UNSAFE_IN_HEADER.search(rule.value or "")]
    credentials = basic_credentials(value)
    if credentials is not None:
        # `git push https://x:{{GITHUB_TOKEN}}@github.com/...` sends the placeholder
        # inside Basic auth; swap it there and re-encode.
        replaced = _replace_text(credentials, rules)
        if replaced != credentials:
            scheme = value.strip().partition(" ")[0]
            return f"{scheme} {base64.b64encode(replaced.encode()).decode()}"
    return _replace_text(value, rules)


def _replace_text(text: str, rules: Sequence[SecretRule]) -> str:
    for rule in rules:
        if rule.placeholder in text:
            assert rule.value is not None
            text = text.replace(rule.placeholder, rule.value)
    return text


def _replace_bytes(data: bytes, rules: Sequence[SecretRule]) -> bytes:
    for rule in rules:
        assert rule.value is not None
        token = rule.placeholder.encode()
        if token in data:
            data = data.replace(token, rule.value.encode())
        # Form bodies carry it percent-encoded: `key=%7B%7BAPI_KEY%7D%7D`.
        for encode in (quote, quote_plus):
            encoded = encode(rule.placeholder, safe="").encode()
            if encoded != token and encoded in data:
                data = data.replace(encoded, encode(rule.value, safe="").encode())
    return data
