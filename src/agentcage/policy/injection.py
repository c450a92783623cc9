"""Secret injection: placeholders in, real values out, and back again in responses.

The agent holds only placeholders such as `{{ANTHROPIC_API_KEY}}`. A placeholder
bound for a host outside its rule's `inject_to` is blocked (the agent is trying to
send a credential somewhere it does not belong); toward an allowed host, `inject`
swaps in the real value. `Scrubber` does the reverse on everything coming back, so
the agent never learns a real value even if a server echoes it.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from agentcage.config.inspection import SecretInjection
from agentcage.policy.decoding import (
    basic_credentials,
    decode_body,
    encode_body,
    percent_decode_repeated,
)
from agentcage.policy.hosts import BadHost, canonical_host, domain_matches
from agentcage.policy.interface import block
from agentcage.policy.leaks.automaton import Automaton
from agentcage.policy.payload import Payloads
from agentcage.policy.types import Finding, Frame, Headers, Request

NAME = "secret-injection"
FORM = "application/x-www-form-urlencoded"
_UNSAFE_IN_HEADER = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True, slots=True)
class SecretRule:
    env: str
    placeholder: str
    inject_to: tuple[str, ...]
    value: str | None  # None: the secret is not set in the proxy's environment

    @classmethod
    def from_config(cls, rule: SecretInjection, secrets: Mapping[str, str]) -> SecretRule:
        value = secrets.get(rule.env) or None
        return cls(rule.env, rule.token, tuple(rule.inject_to), value)

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
        self._tokens = [(rule, rule.placeholder.encode()) for rule in self.rules]
        # One pass per place finds every placeholder, instead of a search per rule.
        self._search = Automaton((token, index) for index, (_, token) in enumerate(self._tokens))

    def inspect_request(self, request: Request) -> Finding | None:
        if not self._tokens:
            return None
        headers = [v for _, v in request.headers]
        headers += [c for c in map(basic_credentials, headers) if c is not None]
        body = self._payloads.of(request).data
        places = {
            "url": percent_decode_repeated(request.path),
            "headers": "\n".join(headers).encode("utf-8", "replace"),
            "body": body,
        }
        if request.content_type == FORM and b"%" in body:
            places["percent-encoded body"] = percent_decode_repeated(body)
        return self._check(request.host, places)

    def inspect_frame(self, frame: Frame) -> Finding | None:
        if not self._tokens or not frame.from_client:
            return None
        return self._check(frame.host, {frame.place: frame.payload})

    def _check(self, host: str, places: Mapping[str, bytes]) -> Finding | None:
        first_place: dict[int, str] = {}
        for place, data in places.items():
            for _start, _end, indexes in self._search.search(data):
                for index in indexes:
                    first_place.setdefault(index, place)
        for index, (rule, _token) in enumerate(self._tokens):
            where = first_place.get(index)
            if where is None:
                continue
            if not rule.allows(host):
                return block(
                    NAME,
                    f"placeholder for {rule.env} in {where} is bound for {host}, but it may "
                    f"only go to {', '.join(rule.inject_to)}",
                    rule.env,
                    severity="critical",
                )
            if rule.value is None:
                return block(NAME, f"secret {rule.env} is not set", rule.env)
        return None


class Injector:
    """Swaps placeholders for real values, only toward each rule's hosts."""

    def __init__(self, rules: Sequence[SecretRule], decode_limit: int) -> None:
        self.rules = [rule for rule in rules if rule.value is not None]
        self._limit = decode_limit

    def inject(self, request: Request) -> Request:
        rules = [rule for rule in self.rules if rule.allows(request.host)]
        if not rules:
            return request
        path = request.path
        for rule in rules:
            assert rule.value is not None
            path = path.replace(rule.placeholder, quote(rule.value, safe=""))
            path = path.replace(quote(rule.placeholder, safe=""), quote(rule.value, safe=""))
        headers = [(key, _replace_header(value, rules)) for key, value in request.headers.items]
        body = self._inject_body(request, rules)
        if body is not request.body:
            headers = [
                (key, str(len(body)) if key.lower() == "content-length" else value)
                for key, value in headers
            ]
        return dataclasses.replace(request, path=path, headers=Headers(tuple(headers)), body=body)

    def inject_frame(self, frame: Frame) -> Frame:
        if not frame.from_client:
            return frame
        rules = [rule for rule in self.rules if rule.allows(frame.host)]
        payload = _replace_bytes(frame.payload, rules)
        return frame if payload is frame.payload else dataclasses.replace(frame, payload=payload)

    def _inject_body(self, request: Request, rules: Sequence[SecretRule]) -> bytes:
        body = request.body
        if not body:
            return body
        coding = ", ".join(request.headers.get_all("content-encoding"))
        if not request.content_encoding:
            return _replace_bytes(body, rules)
        # A compressed body hides its placeholders; edit the decoded form and re-wrap it.
        decoded = decode_body(body, coding, self._limit)
        replaced = _replace_bytes(decoded, rules)
        if replaced is decoded:
            return body
        return encode_body(replaced, coding)


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
