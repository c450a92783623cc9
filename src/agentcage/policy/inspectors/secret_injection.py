"""A placeholder may go only to its rule's hosts, only where the rule injects, only if set.

A placeholder bound for a host outside its rule's `inject_to` is blocked: the agent
is trying to send a credential somewhere it does not belong. Toward an allowed host
a placeholder in a place its rule injects into is blocked when the secret is not
set, or when it sits in a compressed body (a server storing compressed bytes could
hand the value back in a form no scrubber matches). Injection itself is
`policy/injection.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agentcage.policy.decoding import basic_credentials, percent_decode_repeated
from agentcage.policy.injection import SecretRule, content_codings
from agentcage.policy.interface import block
from agentcage.policy.leaks.automaton import Automaton
from agentcage.policy.payload import Payloads
from agentcage.policy.types import Finding, Frame, Request

NAME = "secret-injection"
_FORM = "application/x-www-form-urlencoded"
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


class SecretInjectionInspector:
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
        if request.content_type == _FORM and b"%" in body:
            places["percent-encoded body"] = percent_decode_repeated(body)
        return self._check(request.host, places, ", ".join(content_codings(request)))

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
