"""Secret injection: placeholders in, real values out, and back again in responses.

The agent holds only placeholders such as `{{ANTHROPIC_API_KEY}}`. A placeholder
bound for a host outside its rule's `inject_to` is blocked (the agent is trying to
send a credential somewhere it does not belong); toward an allowed host, `inject`
swaps in the real value, but only in the places its rule names (`places`: header
values by default; also the URL query, uncompressed bodies, WebSocket messages).
Elsewhere toward that host, the URL path included, a placeholder is forwarded as
it is: agents send text holding placeholder strings (a source file in a prompt).
A placeholder in a compressed body whose rule allows `body` is blocked: a server
storing compressed bytes could hand the value back in a form no scrubber matches.
`ValueScrubber` and `EchoGuard` do the reverse on everything coming back, so the agent
never learns a real value even if a server echoes it.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from agentcage.config.inspection import ECHO_PLACES, SecretInjection
from agentcage.policy.decoding import basic_credentials, parse_encodings, percent_decode_repeated
from agentcage.policy.hosts import BadHost, canonical_host, domain_matches
from agentcage.policy.interface import block
from agentcage.policy.leaks.automaton import Automaton
from agentcage.policy.payload import Payloads
from agentcage.policy.types import Finding, Frame, Headers, Request

NAME = "secret-injection"
FORM = "application/x-www-form-urlencoded"
_UNSAFE_IN_HEADER = re.compile(r"[\r\n\x00]")
# Where a placeholder was found -> the place a rule must allow for it to be
# injected there (None: never injected).
_PLACE_OF: dict[str, str | None] = {
    "URL path": None,
    "URL query": "query",
    "headers": "headers",
    "body": "body",
    "percent-encoded body": "body",
    "websocket message": "websocket",
}
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


class InjectionCheck:
    """The inspector: a placeholder may go only to its rule's hosts, and only if set."""

    name = NAME

    def __init__(self, rules: Sequence[SecretRule], payloads: Payloads) -> None:
        self.rules = list(rules)
        self._payloads = payloads
        # One pass per place finds every placeholder, instead of a search per rule.
        self._search = Automaton(
            (rule.placeholder.encode(), index) for index, rule in enumerate(self.rules)
        )

    def inspect_request(self, request: Request) -> Finding | None:
        if not self.rules:
            return None
        headers = [v for _, v in request.headers]
        headers += [c for c in map(basic_credentials, headers) if c is not None]
        body = self._payloads.of(request).data
        path, _, query = request.path.partition("?")
        places = {
            "URL path": percent_decode_repeated(path),
            "URL query": percent_decode_repeated(query),
            "headers": "\n".join(headers).encode("utf-8", "replace"),
            "body": body,
        }
        if request.content_type == FORM and b"%" in body:
            places["percent-encoded body"] = percent_decode_repeated(body)
        return self._check(request.host, places, ", ".join(_codings(request)))

    def inspect_frame(self, frame: Frame) -> Finding | None:
        if not self.rules or not frame.from_client:
            return None
        return self._check(frame.host, {frame.place: frame.payload})

    def _check(
        self, host: str, places: Mapping[str, bytes], compressed: str = ""
    ) -> Finding | None:
        found: dict[int, list[str]] = {}
        for place, data in places.items():
            for _start, _end, indexes in self._search.search(data):
                for index in indexes:
                    wheres = found.setdefault(index, [])
                    if place not in wheres:
                        wheres.append(place)
        for index, wheres in found.items():
            rule = self.rules[index]
            if not rule.allows(host):
                return block(
                    NAME,
                    f"placeholder for {rule.env} in {wheres[0]} is bound for {host}, but it "
                    f"may only go to {', '.join(rule.inject_to)}",
                    rule.env,
                    severity="critical",
                )
            # Control frames (ping, pong, close reason) are no place at all: never injected.
            injected = {_PLACE_OF.get(w) for w in wheres} & rule.places
            if not injected:
                continue  # forwarded as it is: the rule does not inject there
            if rule.value is None:
                return block(NAME, f"secret {rule.env} is not set", rule.env)
            if compressed and "body" in injected:
                return block(
                    NAME,
                    f"placeholder for {rule.env} is in a {compressed}-compressed body; secrets "
                    "are injected only into uncompressed bodies (a server storing compressed "
                    "bytes could hand the value back in a form no scrubber can match): send "
                    "the body uncompressed",
                    rule.env,
                )
        return None


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
        if body and not _codings(request):
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


def _codings(request: Request) -> list[str]:
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
